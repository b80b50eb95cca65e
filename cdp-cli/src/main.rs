//! The `cdp` binary: glue that parses the command line and hands each subcommand to the
//! library. No behaviour lives here.

use anyhow::Context;
use cdp_api::settings::{Cli, Command};
use cdp_api::{logging, rebuild, server};
use cdp_core::AnonymousId;
use cdp_tools::{client, demo, load, metrics_bench, replay};
use clap::Parser;

/// The process's allocator: under load the collector allocates and frees small JSON values
/// and rows from many threads, and glibc's malloc spent more CPU on that (consolidating and
/// unlinking free chunks) than the scoring did.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads for blocking work, most of it SQLite's. SQLite allocates with the C library's
/// malloc, which gives each thread that allocates an arena of its own and keeps what is freed
/// there: spread over tokio's default of up to 512 blocking threads, the page caches left
/// about 150 MB more resident after 200,000 visitors than on one thread. SQLite work is
/// serialised on its connections anyway, so a few threads lose nothing.
const BLOCKING_THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(&cli.log, cli.log_json);
    match cli.command {
        Command::Serve(args) => {
            let settings = args.validate()?;
            let running = server::start(&settings).await?;
            let (_, stop, task) = running.into_parts();
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop.send(());
            task.await.context("server task")?;
        }
        Command::Migrate(args) => {
            let s = args.validate()?;
            let store = cdp_adapters::Store::open(&s.target).await?;
            let applied = store.migrate().await?;
            println!("{}: applied migrations {applied:?}", s.target.describe());
        }
        Command::Demo(args) => {
            let collector = client::Collector::new(&args.target.url)?;
            let s = demo::run(
                &collector,
                args.visitors,
                args.days,
                args.seed,
                args.target.batch,
            )
            .await?;
            println!(
                "demo: {} visitors, {} events: {} accepted, {} duplicate, {} rejected",
                s.visitors, s.events, s.accepted, s.duplicate, s.rejected
            );
        }
        Command::Replay(args) => {
            let collector = client::Collector::new(&args.target.url)?;
            let s = replay::run(&collector, &args.file, args.target.batch).await?;
            println!(
                "replay: {} events: {} accepted, {} duplicate, {} rejected; unreadable lines: {:?}",
                s.events, s.accepted, s.duplicate, s.rejected, s.bad_lines
            );
        }
        Command::RebuildProfiles(args) => {
            let s = args.store.validate()?;
            let store = server::open_store(&s).await?;
            let visitors = if args.visitors.is_empty() {
                rebuild::Visitors::All
            } else {
                rebuild::Visitors::Only(
                    args.visitors
                        .iter()
                        .map(|v| AnonymousId::new(v.as_str()))
                        .collect(),
                )
            };
            let n = rebuild::run(&store, &s.config, &visitors).await?;
            println!("rebuilt {n} profiles");
        }
        Command::Load(args) => {
            let reports = load::run_rounds(&args, |report| println!("{report}")).await?;
            if reports.len() > 1 {
                println!("{}", load::Summary(&reports));
            }
        }
        Command::BenchMetrics(args) => {
            for measured in metrics_bench::run(&args).await? {
                println!("{measured}");
            }
        }
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
