use std::process::ExitCode;
use crate::error::CliError;
use crate::settings::DoctorSettings;
pub async fn run(_s: &DoctorSettings) -> Result<ExitCode, CliError> { Ok(ExitCode::SUCCESS) }
