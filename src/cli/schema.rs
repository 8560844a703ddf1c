//! `editgate schema`: the JSON Schema of the policy files, generated from the raw serde
//! structs the checker parses, so the schema and the parser cannot drift apart.

use super::ExitCode;
use editgate_core::policy::raw::policy_schema;

/// Runs `schema`.
pub fn run() -> ExitCode {
    match serde_json::to_string_pretty(&policy_schema()) {
        Ok(s) => {
            outln!("{s}");
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    }
}
