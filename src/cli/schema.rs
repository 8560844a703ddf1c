//! `editgate schema`: the JSON Schema of the policy files, generated from the raw serde
//! structs the checker parses, so the schema and the parser cannot drift apart.

use super::ExitCode;
use crate::policy::raw::RawFile;

/// The schema as a JSON value.
pub fn policy_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawFile);
    schema.insert("title".into(), "editgate policy file".into());
    schema.insert(
        "description".into(),
        "global.toml or wikis/<wiki>.toml of an editgate policy directory; `editgate validate` checks what a schema cannot (sources, CIDRs, durations, duplicate ids)".into(),
    );
    schema.to_value()
}

/// Runs `schema`.
pub fn run() -> ExitCode {
    match serde_json::to_string_pretty(&policy_schema()) {
        Ok(s) => {
            println!("{s}");
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    }
}
