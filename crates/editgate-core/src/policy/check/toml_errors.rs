//! TOML and serde errors as [`PolicyError`]s an admin can act on: a `file:line:col`, "key"
//! rather than "field", and a "did you mean" for a misspelt key.

use crate::policy::raw::RawFile;
use crate::policy::{Location, PolicyError, PolicyFile, hint};

/// Parses one file's TOML, turning serde's messages into ones with a position and a hint.
pub(super) fn parse_file(file: &PolicyFile, errors: &mut Vec<PolicyError>) -> Option<RawFile> {
    match toml::from_str::<RawFile>(&file.text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            errors.push(toml_error(file, &e));
            None
        }
    }
}

/// A TOML or serde error as a [`PolicyError`] with `file:line:col`.
pub fn toml_error(file: &PolicyFile, e: &toml::de::Error) -> PolicyError {
    let at = e.span().map(|s| s.start).or_else(|| deep_key_offset(&file.text));
    let location = match at {
        Some(offset) => Location::at(&file.path, &file.text, offset),
        None => Location::file(&file.path),
    };
    let message = match e.message().trim() {
        "recursion limit" => format!(
            "a dotted key of {DOTTED_KEY_LIMIT} or more parts; editgate's keys have at most 3 (like `when.ip_in`)"
        ),
        m => describe_serde_message(m),
    };
    PolicyError::new(location, message)
}

/// The toml crate refuses keys of this many dotted parts or more.
const DOTTED_KEY_LIMIT: usize = 80;

/// Where the first key of [`DOTTED_KEY_LIMIT`] parts or more starts. The toml crate reports
/// that one error ("recursion limit") without a position, so it is found here by scanning:
/// the part of each line before `=` (or inside a `[table]` header), dots outside quotes.
fn deep_key_offset(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let key = match body.strip_prefix('[') {
            Some(header) => header.split(']').next().unwrap_or(header),
            None => body.split('=').next().unwrap_or(body),
        };
        let mut quote = None;
        let mut dots = 0;
        for c in key.chars() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '.') => dots += 1,
                _ => {}
            }
        }
        if dots + 1 >= DOTTED_KEY_LIMIT {
            return Some(offset + indent);
        }
        offset += line.len();
    }
    None
}

/// Rewrites serde's "unknown field" message as "unknown key ... in `[table]`, expected one of:
/// ...; did you mean ...?"; other messages pass through with "field" said as "key".
pub fn describe_serde_message(msg: &str) -> String {
    let msg = msg.trim_end().trim_end_matches('.');
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let table = match expected.first().copied() {
            Some("id") => " in [[rule]]",
            Some("settings") => " at the top level",
            Some("default") => " in [settings]",
            Some("kind") => " in [sources.*]",
            Some("ip_in") => " in a condition table (when/unless)",
            Some("name") => " in [[case]]",
            Some("ip") => " in a case's request",
            Some("verdict") => " in a case's expect",
            _ => "",
        };
        if expected.is_empty() {
            return format!("unknown key `{key}`{table}, no keys are allowed here");
        }
        return format!(
            "unknown key `{key}`{table}, expected one of: {}{}",
            expected.join(", "),
            hint(key, expected.iter().copied())
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    msg.to_owned()
}
