use std::process::ExitCode;
use crate::error::CliError;
use crate::settings::SizeSettings;
pub async fn run(_s: &SizeSettings) -> Result<ExitCode, CliError> { Ok(ExitCode::SUCCESS) }
