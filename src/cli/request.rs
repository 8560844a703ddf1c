//! The request flags shared by `check` and `explain`, and their conversion to an [`Attempt`].

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use jiff::{SignedDuration, Timestamp};

use editgate_core::attempt::{Account, AccountKind, Attempt, FieldError, parse_ip};
use editgate_core::policy::parse_duration;

/// One edit attempt, from flags.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Policy directory.
    #[arg(long, default_value = "policies", value_name = "DIR")]
    pub policies: PathBuf,
    /// Client IP address (IPv4 or IPv6).
    #[arg(long, value_parser = ip_flag("--ip"))]
    pub ip: IpAddr,
    /// An X-Forwarded-For address; repeat for a chain. Tested only by `xff = true` rules.
    #[arg(long, value_parser = ip_flag("--xff"), value_name = "IP")]
    pub xff: Vec<IpAddr>,
    /// Wiki id, like `enwiki`.
    #[arg(long, default_value = "")]
    pub wiki: String,
    /// Action: edit, create, move, upload, createaccount, ...
    #[arg(long, default_value = "edit")]
    pub action: String,
    /// Account kind.
    #[arg(long, default_value = "anonymous", value_parser = ["anonymous", "temporary", "registered"])]
    pub account: String,
    /// A user group; repeat for several.
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// A user right; repeat for several.
    #[arg(long = "right", value_name = "R")]
    pub rights: Vec<String>,
    /// Edit count.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub edits: u64,
    /// Account age, like `30d`, `12h` or `1w` (units s, m, h, d, w).
    #[arg(long, value_parser = age_flag, value_name = "AGE")]
    pub age: Option<i64>,
    /// The account has a confirmed e-mail address.
    #[arg(long)]
    pub email_confirmed: bool,
    /// Evaluate as of this time (RFC 3339, like 2027-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<Timestamp>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn ip_flag(flag: &'static str) -> impl Fn(&str) -> Result<IpAddr, String> + Clone {
    move |s| parse_ip(flag, s).map_err(|e| e.to_string())
}

fn age_flag(s: &str) -> Result<i64, String> {
    parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration; write a number and a unit (s, m, h, d, w), like `30d`"))
}

impl RequestArgs {
    /// The evaluation time.
    pub fn now(&self) -> Timestamp {
        self.at.unwrap_or_else(Timestamp::now)
    }

    /// The attempt these flags describe, evaluated at `now`, checked by [`Attempt::new`] like
    /// a request to the service; an error names the flag (`--wiki: ...`).
    pub fn attempt(&self, now: Timestamp) -> Result<Attempt, FieldError> {
        let kind = AccountKind::parse(&self.account).unwrap_or(AccountKind::Anonymous);
        let account = Account {
            kind,
            groups: self.groups.clone(),
            rights: self.rights.clone(),
            edit_count: self.edits,
            registered_at: self
                .age
                .and_then(|s| now.checked_sub(SignedDuration::from_secs(s)).ok()),
            email_confirmed: self.email_confirmed,
        };
        Attempt::new(
            self.ip,
            self.xff.clone(),
            self.wiki.clone(),
            self.action.clone(),
            account,
        )
        .map_err(|e| {
            let flag = match e.field.split('[').next().unwrap_or_default() {
                "account.groups" => "--group",
                "account.rights" => "--right",
                "wiki" => "--wiki",
                "action" => "--action",
                other => other,
            };
            FieldError::new(flag, e.message)
        })
    }
}
