//! placeholder
use crate::settings::LoadArgs;
/// x
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct LoadError;
/// x
pub async fn run(_a: &LoadArgs) -> Result<String, LoadError> {
    Ok(String::new())
}
