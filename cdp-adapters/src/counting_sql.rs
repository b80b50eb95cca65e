//! The statements of the counting role, for either SQL dialect, from the core's reads as
//! data (`cdp_core::counting::reads`). They only select, sum, count and upsert the generic
//! `cdp_counters` and `cdp_facts` tables; no event type, property or rule is written here:
//! property names and the event types each is read for come from
//! `cdp_core::counting::{PROPERTIES, PROPERTY_TYPES}`.

use cdp_core::counting::{
    Cond, Counter, CounterSum, FactCount, LabelCol, ReadPlan, TimeCol, Window, PROPERTIES,
    PROPERTY_TYPES,
};
use chrono::{DateTime, Utc};

/// The SQL dialect, with what it prefixes table names with.
#[derive(Debug, Clone)]
pub enum Dialect {
    /// Postgres: `$n` parameters, typed timestamps, tables in a schema (quoted, with the dot).
    Postgres {
        /// `"schema".`
        prefix: String,
    },
    /// SQLite: `?n` parameters, timestamps as RFC 3339 text, plain table names.
    Sqlite,
}

/// A Postgres identifier, quoted (embedded quotes doubled).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The prefix of a Postgres schema's tables: the schema quoted as an identifier, then a dot
/// (`"public".`). The one rule, for the native store and the Worker.
pub fn schema_prefix(schema: &str) -> String {
    format!("{}.", ident(schema))
}

fn postgres(prefix: &str) -> Dialect {
    Dialect::Postgres {
        prefix: prefix.to_owned(),
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// An instant.
    Time(DateTime<Utc>),
    /// A whole number (Postgres `int8`).
    Int(i64),
    /// A Postgres `text[]` (nulls allowed).
    TextArray(Vec<Option<String>>),
    /// A Postgres `timestamptz[]` (nulls allowed).
    TimeArray(Vec<Option<DateTime<Utc>>>),
    /// A Postgres `int8[]`.
    IntArray(Vec<i64>),
}

/// A Postgres array literal's element: quoted, backslashes and quotes escaped; `NULL` bare.
fn array_element(v: Option<&str>) -> String {
    match v {
        None => "NULL".to_owned(),
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

fn instant_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Param {
    /// The value as Postgres text input, for a client that sends every parameter as text
    /// (the Worker's): the statements cast each parameter, so the server parses it as the
    /// type the native client binds.
    pub fn text(&self) -> String {
        let array = |items: Vec<String>| format!("{{{}}}", items.join(","));
        match self {
            Param::Text(s) => s.clone(),
            Param::Time(t) => instant_text(t),
            Param::Int(n) => n.to_string(),
            Param::TextArray(v) => array(v.iter().map(|x| array_element(x.as_deref())).collect()),
            Param::TimeArray(v) => array(
                v.iter()
                    .map(|x| array_element(x.as_ref().map(instant_text).as_deref()))
                    .collect(),
            ),
            Param::IntArray(v) => array(v.iter().map(i64::to_string).collect()),
        }
    }
}

/// A statement and its parameters in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The text.
    pub sql: String,
    /// `$1`/`?1` onwards.
    pub params: Vec<Param>,
}

/// The columns of a fact, in the order every fact statement reads and writes them.
pub const FACT_COLUMNS: &str = "brand_id, entity, kind, part, at, t1, t2, t3, g1, g2, g3";
/// The columns of a counter row.
pub const COUNTER_COLUMNS: &str = "brand_id, counter, bucket, dim1, dim2, dim3, value";

impl Dialect {
    /// A table's name as statements write it.
    pub fn table(&self, name: &str) -> String {
        match self {
            Dialect::Postgres { prefix } => format!("{prefix}{name}"),
            Dialect::Sqlite => name.to_owned(),
        }
    }

    /// The JSON text at one key of `properties`, for the event types the core reads it for
    /// (null for others, so their properties are not parsed).
    fn property(&self, key: &str, types: &[cdp_core::EventType]) -> String {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let value = match self {
            Dialect::Postgres { .. } => format!("(properties -> {})::text", lit(key)),
            Dialect::Sqlite => format!("properties -> {}", lit(&format!("$.\"{key}\""))),
        };
        let names: Vec<String> = types.iter().map(|t| lit(t.as_str())).collect();
        format!(
            "case when event_type in ({}) then {value} end",
            names.join(", ")
        )
    }

    /// The columns of a counted event: the ones `CountedEvent` has, properties last.
    pub fn counted_columns(&self) -> String {
        self.counted_column_list().join(", ")
    }

    /// The columns of [`Dialect::counted_columns`], one per entry.
    pub fn counted_column_list(&self) -> Vec<String> {
        let mut cols = vec![
            "seq".to_owned(),
            "brand_id".into(),
            "anonymous_id".into(),
            "customer_id".into(),
            "session_id".into(),
            "event_type".into(),
            "\"timestamp\"".into(),
            "predicted_persona".into(),
            "explicit_persona".into(),
            "current_stage".into(),
        ];
        cols.extend(self.properties());
        cols
    }

    /// The [`PROPERTIES`] columns, in order.
    fn properties(&self) -> impl Iterator<Item = String> + '_ {
        PROPERTIES
            .iter()
            .zip(PROPERTY_TYPES)
            .map(|(p, types)| self.property(p, types))
    }
}

/// Builds one statement, numbering parameters as they are added.
struct Builder<'a> {
    d: &'a Dialect,
    sql: String,
    params: Vec<Param>,
}

impl<'a> Builder<'a> {
    fn new(d: &'a Dialect) -> Builder<'a> {
        Builder {
            d,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        let n = self.params.len();
        match self.d {
            Dialect::Postgres { .. } => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    fn time(&mut self, t: DateTime<Utc>) -> String {
        self.bind(Param::Time(t))
    }

    fn text(&mut self, s: &str) -> String {
        self.bind(Param::Text(s.to_owned()))
    }

    fn done(self) -> Stmt {
        Stmt {
            sql: self.sql,
            params: self.params,
        }
    }
}

fn time_col(c: TimeCol) -> &'static str {
    match c {
        TimeCol::At => "at",
        TimeCol::T1 => "t1",
        TimeCol::T2 => "t2",
        TimeCol::T3 => "t3",
    }
}

fn label_col(c: LabelCol) -> &'static str {
    match c {
        LabelCol::G1 => "g1",
        LabelCol::G2 => "g2",
        LabelCol::G3 => "g3",
    }
}

fn cond(b: &mut Builder<'_>, c: &Cond) -> String {
    match c {
        Cond::Lt(col, t) => format!("{} < {}", time_col(*col), b.time(*t)),
        Cond::Ge(col, t) => format!("{} >= {}", time_col(*col), b.time(*t)),
        Cond::IsNull(col) => format!("{} is null", time_col(*col)),
        Cond::Any(any) if any.is_empty() => "false".into(),
        Cond::Any(any) => {
            let parts: Vec<String> = any.iter().map(|c| cond(b, c)).collect();
            format!("({})", parts.join(" or "))
        }
    }
}

/// The union of a counter sum's ranges, each a seek on the primary key (brand, counter,
/// bucket): an `or` of the ranges would scan every counter row of the brand. `None` when
/// every range is empty.
fn counter_union(b: &mut Builder<'_>, brand: &str, ranges: &[(Counter, Window)]) -> Option<String> {
    let ranges: Vec<&(Counter, Window)> = ranges.iter().filter(|(_, w)| !w.is_empty()).collect();
    if ranges.is_empty() {
        return None;
    }
    let brand = b.text(brand);
    let mut parts = Vec::new();
    for (counter, w) in ranges {
        let c = b.text(counter.name());
        let (s, e) = (b.time(w.start), b.time(w.end));
        parts.push(format!(
            "select bucket, dim1, dim2, dim3, value from {} \
             where brand_id = {brand} and counter = {c} and bucket >= {s} and bucket < {e}",
            b.d.table("cdp_counters")
        ));
    }
    Some(parts.join(" union all "))
}

/// The statement of a counter sum: `[bucket,] dim1, dim2, dim3 (null where not grouped), sum`.
/// `None` when every range is empty (the answer is no groups).
pub fn counter_sum(d: &Dialect, brand: &str, q: &CounterSum) -> Option<Stmt> {
    let mut b = Builder::new(d);
    b.sql = counter_sum_sql(&mut b, brand, q)?;
    Some(b.done())
}

/// Columns of a counter sum's rows.
const COUNTER_SUM_COLUMNS: usize = 5;

fn counter_sum_sql(b: &mut Builder<'_>, brand: &str, q: &CounterSum) -> Option<String> {
    let union = counter_union(b, brand, &q.ranges)?;
    Some(counter_grouped(&format!("({union}) parts"), q))
}

/// A counter sum's grouping of the rows of `from` (a table expression named `parts`).
fn counter_grouped(from: &str, q: &CounterSum) -> String {
    let mut select = vec![if q.by_bucket { "bucket" } else { "null" }.to_owned()];
    let mut group = Vec::new();
    if q.by_bucket {
        group.push("bucket".to_owned());
    }
    for (i, on) in q.by_dims.iter().enumerate() {
        let col = format!("dim{}", i + 1);
        if *on {
            select.push(col.clone());
            group.push(col);
        } else {
            select.push("null".into());
        }
    }
    select.push("cast(sum(value) as bigint)".into());
    format!(
        "select {} from {from}{}",
        select.join(", "),
        if group.is_empty() {
            String::new()
        } else {
            format!(" group by {}", group.join(", "))
        }
    )
}

/// The counter rows in some ranges, as stored: `bucket, dim1, dim2, dim3, value`, for a store
/// that sums them itself ([`CounterSum::group`]). `None` when every range is empty.
pub fn counter_rows(d: &Dialect, brand: &str, ranges: &[(Counter, Window)]) -> Option<Stmt> {
    let mut b = Builder::new(d);
    b.sql = counter_union(&mut b, brand, ranges)?;
    Some(b.done())
}

/// The `from ... where ...` of a fact count's rows.
fn fact_from(b: &mut Builder<'_>, brand: &str, q: &FactCount) -> String {
    let brand = b.text(brand);
    let kind = b.text(q.kind.name());
    let (s, e) = (b.time(q.at.start), b.time(q.at.end));
    let mut wheres = vec![
        format!("brand_id = {brand}"),
        format!("kind = {kind}"),
        format!("at >= {s}"),
        format!("at < {e}"),
    ];
    for c in &q.filter {
        wheres.push(cond(b, c));
    }
    format!(
        "from {} where {}",
        b.d.table("cdp_facts"),
        wheres.join(" and ")
    )
}

/// The condition of a fact count's `also`, its parameters bound after the rows' filter.
fn also_when(b: &mut Builder<'_>, q: &FactCount) -> Option<String> {
    q.also.as_ref().map(|c| cond(b, c))
}

/// The statement of a fact count: the labels grouped by, then `count`, `also`. `None` when
/// the window is empty.
pub fn fact_count(d: &Dialect, brand: &str, q: &FactCount) -> Option<Stmt> {
    let mut b = Builder::new(d);
    b.sql = fact_count_sql(&mut b, brand, q)?;
    Some(b.done())
}

fn fact_count_sql(b: &mut Builder<'_>, brand: &str, q: &FactCount) -> Option<String> {
    if q.at.is_empty() {
        return None;
    }
    let from = fact_from(b, brand, q);
    let also = match also_when(b, q) {
        Some(c) => format!("count(case when {c} then 1 end)"),
        None => "0".into(),
    };
    let labels: Vec<&str> = q.group.iter().map(|g| label_col(*g)).collect();
    let mut select: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
    select.push("count(*)".into());
    select.push(format!("cast({also} as bigint)"));
    Some(format!(
        "select {} {from}{}",
        select.join(", "),
        if labels.is_empty() {
            String::new()
        } else {
            format!(" group by {}", labels.join(", "))
        }
    ))
}

/// The rows behind a fact count, for a store that groups them itself: the labels grouped by,
/// then `1` where the row meets `also` (else `0`). SQLite's GROUP BY sorts, and with a
/// hundred-odd groups over tens of thousands of rows a hash map over the rows
/// (`counting_rows::FactGroups`) is several times faster. `None` when the window is empty.
pub fn fact_rows(d: &Dialect, brand: &str, q: &FactCount) -> Option<Stmt> {
    if q.at.is_empty() {
        return None;
    }
    let mut b = Builder::new(d);
    let from = fact_from(&mut b, brand, q);
    let also = match also_when(&mut b, q) {
        Some(c) => format!("case when {c} then 1 else 0 end"),
        None => "0".into(),
    };
    let mut select: Vec<String> = q.group.iter().map(|g| label_col(*g).to_owned()).collect();
    select.push(also);
    b.sql = format!("select {} {from}", select.join(", "));
    Some(b.done())
}

/// The events of a brand whose timestamp is in `w`, counted in groups that count alike:
/// `event_type, predicted_persona`, the [`PROPERTIES`] (as for a counted event), `count`.
/// `None` when `w` is empty.
pub fn event_groups_in(d: &Dialect, brand: &str, w: Window) -> Option<Stmt> {
    let mut b = Builder::new(d);
    b.sql = event_groups_sql(&mut b, brand, w)?;
    Some(b.done())
}

fn event_groups_sql(b: &mut Builder<'_>, brand: &str, w: Window) -> Option<String> {
    if w.is_empty() {
        return None;
    }
    let brand = b.text(brand);
    let (s, e) = (b.time(w.start), b.time(w.end));
    let mut cols = vec!["event_type".to_owned(), "predicted_persona".into()];
    cols.extend(b.d.properties());
    let group: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
    Some(format!(
        "select {}, cast(count(*) as bigint) from {} where brand_id = {brand} \
         and \"timestamp\" >= {s} and \"timestamp\" < {e} group by {}",
        cols.join(", "),
        b.d.table("cdp_events"),
        group.join(", ")
    ))
}

/// The newest stored event's timestamp of a brand.
pub fn last_event(d: &Dialect, brand: &str) -> Stmt {
    let mut b = Builder::new(d);
    b.sql = last_event_sql(&mut b, brand);
    b.done()
}

fn last_event_sql(b: &mut Builder<'_>, brand: &str) -> String {
    let brand = b.text(brand);
    format!(
        "select max(\"timestamp\") from {} where brand_id = {brand}",
        b.d.table("cdp_events")
    )
}

/// The live stream's read on Postgres (tables under `prefix`): the newest events of a brand,
/// filtered, columns of `codec::EVENT_COLUMNS`.
pub fn recent_events(prefix: &str, brand: &str, q: &crate::analytics::StreamQuery) -> Stmt {
    recent_events_with(prefix, brand, q, |c| format!("\"{c}\""))
}

/// [`recent_events`] answering one JSON value: the array of the rows as objects keyed by
/// column (as PostgREST answers, so `codec::EventColumns` reads them), the `real` columns
/// widened to `float8` in SQL exactly as the native client widens them.
pub fn recent_events_json(prefix: &str, brand: &str, q: &crate::analytics::StreamQuery) -> Stmt {
    let s = recent_events_with(prefix, brand, q, json_event_column);
    Stmt {
        sql: format!(
            "select coalesce(json_agg(t), '[]'::json) from ({}) t",
            s.sql
        ),
        params: s.params,
    }
}

/// When an event of `brand` was last stored (what `/health` reports): the newest rows by
/// `seq` (a backwards walk of its index), not a scan. One `timestamptz` column, `null`
/// before the first event.
pub fn last_processed_at(prefix: &str, brand: &str) -> Stmt {
    let d = postgres(prefix);
    let mut b = Builder::new(&d);
    let brand = b.text(brand);
    b.sql = format!(
        "select max(processed_at) from (select processed_at from {} \
         where brand_id = {brand}::text order by seq desc limit 100) latest",
        d.table("cdp_events")
    );
    b.done()
}

/// One visitor's dashboard profile read as one statement of two JSON columns: the stored
/// profile live at `now` (`null` when there is none), and the array of the visitor's events
/// (objects keyed by column, as [`recent_events_json`] answers them) in store order,
/// processed since that profile was last updated (all of them when there is none), for
/// `cdp_answers::bodies::live_profile`. The bound keeps one second of slack below the
/// profile's `last_updated`, which JSON carries at a finer precision than the column: an
/// event read twice that way is a duplicate to the core and changes nothing.
pub fn visitor_profile_json(prefix: &str, brand: &str, id: &str, now: DateTime<Utc>) -> Stmt {
    let d = postgres(prefix);
    let mut b = Builder::new(&d);
    let (brand, id, now) = (b.text(brand), b.text(id), b.time(now));
    let cols: Vec<String> = crate::codec::EVENT_COLUMNS
        .iter()
        .map(|c| json_event_column(c))
        .collect();
    b.sql = format!(
        "with p as (select profile from {profiles} where brand_id = {brand}::text \
         and anonymous_id = {id}::text and expires_at >= {now}::timestamptz) \
         select (select profile from p), \
         (select coalesce(json_agg(t), '[]'::json) from (select {cols} from {events} \
         where brand_id = {brand}::text and anonymous_id = {id}::text and processed_at >= \
         coalesce((select (profile->>'last_updated')::timestamptz - interval '1 second' from p), \
         '-infinity') order by seq) t)",
        profiles = d.table("cdp_profiles"),
        events = d.table("cdp_events"),
        cols = cols.join(", "),
    );
    b.done()
}

/// The identity reads of the Worker's people routes, as one row: the brand's whole identity
/// log (column 1, a JSON array of edges by `codec::EDGE_COLUMNS`), every stored event of
/// `browsers` in processing order (column 2, as [`visitor_profile_json`]'s second column;
/// none when `browsers` is empty), and the erasure audit's three counts (columns 3 to 5:
/// erasures, tombstones, suppressed), all in one snapshot.
pub fn identity_json(prefix: &str, brand: &str, browsers: &[String]) -> Stmt {
    let d = postgres(prefix);
    let mut b = Builder::new(&d);
    let brand = b.text(brand);
    let ids = b.bind(Param::TextArray(
        browsers.iter().cloned().map(Some).collect(),
    ));
    let edge_cols: Vec<String> = crate::codec::EDGE_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    let cols: Vec<String> = crate::codec::EVENT_COLUMNS
        .iter()
        .map(|c| json_event_column(c))
        .collect();
    b.sql = format!(
        "select (select coalesce(json_agg(t), '[]'::json) from (select {edge_cols} from {edges} \
           where brand_id = {brand}::text) t), \
         (select coalesce(json_agg(t), '[]'::json) from (select {cols} from {events} \
           where brand_id = {brand}::text and anonymous_id = any({ids}::text[]) order by seq) t), \
         (select count(*) from {erasures} where brand_id = {brand}::text), \
         (select count(*) from {tombstones} where brand_id = {brand}::text), \
         (select coalesce(sum(suppressed), 0)::int8 from {tombstones} where brand_id = {brand}::text)",
        edge_cols = edge_cols.join(", "),
        edges = d.table("cdp_identity_edges"),
        events = d.table("cdp_events"),
        erasures = d.table("cdp_erasures"),
        tombstones = d.table("cdp_tombstones"),
        cols = cols.join(", "),
    );
    b.done()
}

/// An event column as the JSON reads select it: the `real` columns widened to `float8`
/// exactly as the native client widens them.
fn json_event_column(c: &str) -> String {
    match c {
        "persona_confidence" | "stage_confidence" => format!("\"{c}\"::float8 as \"{c}\""),
        _ => format!("\"{c}\""),
    }
}

fn recent_events_with(
    prefix: &str,
    brand: &str,
    q: &crate::analytics::StreamQuery,
    column: impl Fn(&str) -> String,
) -> Stmt {
    let d = postgres(prefix);
    let mut b = Builder::new(&d);
    let mut wheres = vec![format!("brand_id = {}", b.text(brand))];
    if let Some(t) = &q.event_type {
        wheres.push(format!("event_type = {}", b.text(t)));
    }
    if let Some(p) = &q.persona {
        wheres.push(format!("predicted_persona = {}", b.text(p)));
    }
    let limit = b.bind(Param::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    let cols: Vec<String> = crate::codec::EVENT_COLUMNS
        .iter()
        .map(|c| column(c))
        .collect();
    b.sql = format!(
        "select {} from {} where {} order by \"timestamp\" desc, seq desc limit {limit}::int8",
        cols.join(", "),
        d.table("cdp_events"),
        wheres.join(" and ")
    );
    b.done()
}

/// A select of `columns` columns as one JSON value: the array of its rows, each an array of
/// its columns (instants as RFC 3339 text, whole numbers as numbers). For a client that
/// should not convert values itself (the Worker's), and to put several reads in one row.
pub fn json_rows(select: &str, columns: usize) -> String {
    let names: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    format!(
        "select coalesce(json_agg(json_build_array({})), '[]'::json) from ({select}) as t({})",
        names.join(", "),
        names.join(", ")
    )
}

/// Where a [`plan_as_json`] statement's answers are: for each list of the plan (counters,
/// facts, events, last event), the column holding each entry's rows, or `None` where the
/// entry reads nothing (its answer is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JsonLayout {
    /// Per counter sum.
    pub counters: Vec<Option<usize>>,
    /// Per fact count.
    pub facts: Vec<Option<usize>>,
    /// Per event window.
    pub events: Vec<Option<usize>>,
    /// The last event's column, when asked.
    pub last_event: Option<usize>,
}

/// A whole [`ReadPlan`] as one Postgres statement answering one row: one `json` column per
/// read, each an array of that read's rows as arrays, in the columns the separate
/// statements select. One statement is one round trip and one plan, however many reads a
/// dashboard answer needs; the rows are a few hundred groups, so the JSON is small.
pub fn plan_as_json(d: &Dialect, brand: &str, plan: &ReadPlan) -> (Stmt, JsonLayout) {
    let mut b = Builder::new(d);
    let mut cols: Vec<String> = Vec::new();
    let mut add = |sql: Option<String>, n: usize| -> Option<usize> {
        cols.push(format!("({})", json_rows(&sql?, n)));
        Some(cols.len() - 1)
    };
    // Sums over the same ranges (the metrics plan sums the current window's events three
    // ways) read the rows once, as a materialized common table each groups.
    // Each distinct shared range list and its table's name (`None`: every range empty).
    type Shared<'a> = (&'a [(Counter, Window)], Option<String>);
    let mut shared: Vec<Shared<'_>> = Vec::new();
    let mut ctes = Vec::new();
    for q in &plan.counters {
        let users = plan
            .counters
            .iter()
            .filter(|o| o.ranges == q.ranges)
            .count();
        if users > 1 && !shared.iter().any(|(r, _)| *r == q.ranges.as_slice()) {
            let name = counter_union(&mut b, brand, &q.ranges).map(|union| {
                ctes.push(format!("r{} as materialized ({union})", ctes.len()));
                format!("r{}", ctes.len() - 1)
            });
            shared.push((&q.ranges, name));
        }
    }
    let mut layout = JsonLayout::default();
    for q in &plan.counters {
        let sql = match shared.iter().find(|(r, _)| *r == q.ranges.as_slice()) {
            Some((_, name)) => name
                .as_ref()
                .map(|name| counter_grouped(&format!("{name} parts"), q)),
            None => counter_sum_sql(&mut b, brand, q),
        };
        layout.counters.push(add(sql, COUNTER_SUM_COLUMNS));
    }
    for q in &plan.facts {
        let sql = fact_count_sql(&mut b, brand, q);
        layout.facts.push(add(sql, q.group.len() + 2));
    }
    for w in &plan.events {
        let sql = event_groups_sql(&mut b, brand, *w);
        layout.events.push(add(sql, 3 + PROPERTIES.len()));
    }
    if plan.last_event {
        let sql = last_event_sql(&mut b, brand);
        layout.last_event = add(Some(sql), 1);
    }
    let with = if ctes.is_empty() {
        String::new()
    } else {
        format!("with {} ", ctes.join(", "))
    };
    b.sql = format!("{with}select {}", cols.join(", "));
    (b.done(), layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdp_core::counting::FactKind;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn statements_number_their_parameters_per_dialect() {
        let w = Window {
            start: at("2026-03-01T00:00:00Z"),
            end: at("2026-03-02T00:00:00Z"),
        };
        let q = FactCount {
            kind: FactKind::VisitorDay,
            at: w,
            filter: vec![Cond::Any(vec![
                Cond::IsNull(TimeCol::T2),
                Cond::Lt(TimeCol::T2, w.start),
            ])],
            group: vec![LabelCol::G1],
            also: Some(Cond::Ge(TimeCol::T1, w.end)),
        };
        let pg = fact_count(
            &Dialect::Postgres {
                prefix: "\"s\".".into(),
            },
            "b",
            &q,
        )
        .expect("stmt");
        assert_eq!(
            pg.sql,
            "select g1, count(*), cast(count(case when t1 >= $6 then 1 end) as bigint) \
             from \"s\".cdp_facts where brand_id = $1 and kind = $2 and at >= $3 and at < $4 \
             and (t2 is null or t2 < $5) group by g1"
        );
        assert_eq!(pg.params.len(), 6);
        let lite = fact_count(&Dialect::Sqlite, "b", &q).expect("stmt");
        assert!(lite.sql.contains("t2 < ?5") && lite.sql.contains("from cdp_facts"));
        let empty = CounterSum {
            ranges: vec![(
                Counter::EventsDay,
                Window {
                    start: w.end,
                    end: w.end,
                },
            )],
            by_bucket: true,
            by_dims: [true; 3],
        };
        assert_eq!(counter_sum(&Dialect::Sqlite, "b", &empty), None);
    }

    #[test]
    fn a_plan_as_one_statement_numbers_parameters_across_its_reads_and_skips_empty_ones() {
        let w = Window {
            start: at("2026-03-01T00:00:00Z"),
            end: at("2026-03-01T05:00:00Z"),
        };
        let empty = Window {
            start: w.end,
            end: w.end,
        };
        let plan = ReadPlan {
            counters: vec![CounterSum {
                ranges: vec![(Counter::EventsHour, w)],
                by_bucket: true,
                by_dims: [true, false, false],
            }],
            facts: vec![
                FactCount {
                    kind: FactKind::Session,
                    at: empty,
                    filter: vec![],
                    group: vec![],
                    also: None,
                },
                FactCount {
                    kind: FactKind::Identity,
                    at: w,
                    filter: vec![],
                    group: vec![LabelCol::G1],
                    also: None,
                },
            ],
            events: vec![empty],
            last_event: true,
        };
        let d = Dialect::Postgres {
            prefix: "\"s\".".into(),
        };
        let (stmt, layout) = plan_as_json(&d, "b", &plan);
        assert_eq!(
            layout,
            JsonLayout {
                counters: vec![Some(0)],
                facts: vec![None, Some(1)],
                events: vec![None],
                last_event: Some(2),
            }
        );
        // counter: brand, name, start, end; identity facts: brand, kind, start, end; last: brand.
        assert_eq!(stmt.params.len(), 9);
        assert!(stmt
            .sql
            .starts_with("select (select coalesce(json_agg(json_build_array(c0, c1, c2, c3, c4))"));
        assert!(stmt
            .sql
            .contains("kind = $6 and at >= $7 and at < $8 group by g1"));
        assert!(stmt.sql.contains("where brand_id = $9) as t(c0))"));
    }

    #[test]
    fn counter_sums_over_the_same_ranges_read_them_once() {
        let w = Window {
            start: at("2026-03-01T00:00:00Z"),
            end: at("2026-03-03T00:00:00Z"),
        };
        let sum = |by_dims| CounterSum {
            ranges: vec![(Counter::EventsDay, w)],
            by_bucket: false,
            by_dims,
        };
        let plan = ReadPlan {
            counters: vec![sum([true, false, false]), sum([false, true, false])],
            ..ReadPlan::default()
        };
        let d = Dialect::Postgres {
            prefix: "\"s\".".into(),
        };
        let (stmt, layout) = plan_as_json(&d, "b", &plan);
        assert_eq!(layout.counters, vec![Some(0), Some(1)]);
        assert!(stmt
            .sql
            .starts_with("with r0 as materialized (select bucket"));
        assert_eq!(stmt.sql.matches("cdp_counters").count(), 1);
        assert!(stmt.sql.contains("from r0 parts group by dim1)"));
        assert!(stmt.sql.contains("from r0 parts group by dim2)"));
        assert_eq!(stmt.params.len(), 4);
    }

    #[test]
    fn parameters_as_postgres_text_input_quote_array_elements() {
        assert_eq!(
            Param::TextArray(vec![
                Some("a\"b".into()),
                None,
                Some("c\\d".into()),
                Some("".into())
            ])
            .text(),
            r#"{"a\"b",NULL,"c\\d",""}"#
        );
        assert_eq!(
            Param::TimeArray(vec![Some(at("2026-03-01T00:00:00Z")), None]).text(),
            r#"{"2026-03-01T00:00:00.000000Z",NULL}"#
        );
        assert_eq!(Param::IntArray(vec![3, -1]).text(), "{3,-1}");
        assert_eq!(Param::Int(7).text(), "7");
    }
}
