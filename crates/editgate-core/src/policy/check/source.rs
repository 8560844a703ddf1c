//! Checking one `[sources.<name>]` table: its kind, path, bounds, and the `url` settings of a
//! fetched source.

use std::ops::Range;

use toml::Spanned;

use super::Cx;
use crate::policy::raw::RawSource;
use crate::policy::{Auth, Remote, SourceDef, format_duration, hint};
use crate::sources::SourceKind;
use crate::sources::maxmind::AnonFlag;

impl Cx<'_> {
    /// The `url` settings of a source: `Some(None)` for a file source, `None` when invalid.
    fn remote(&mut self, name: &Spanned<String>, s: &RawSource) -> Option<Option<Remote>> {
        let Some(url) = &s.url else {
            for (key, span) in [
                ("refresh", s.refresh.as_ref().map(Spanned::span)),
                ("timeout", s.timeout.as_ref().map(Spanned::span)),
                ("auth_header", s.auth_header.as_ref().map(Spanned::span)),
                ("auth_file", s.auth_file.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.err(span, format!("`{key}` only applies to sources with a `url`"));
                }
            }
            return Some(None);
        };
        let u = url.get_ref();
        // `get`, not indexing: a byte offset inside a multi-byte character is not a prefix.
        let ok_scheme = ["http://", "https://"]
            .iter()
            .any(|p| u.len() > p.len() && u.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p)));
        if !ok_scheme || u.chars().any(char::is_whitespace) {
            self.err(
                url.span(),
                format!(
                    "source `{}`: `url` must be an `http://` or `https://` address, not `{}`",
                    name.get_ref(),
                    crate::sources::snippet(u)
                ),
            );
            return None;
        }
        let secs = |this: &mut Self, d: &Option<Spanned<String>>, key: &str, default: i64, max: i64| match d {
            None => Some(default),
            Some(d) => {
                let v = this.duration(d, key)?;
                if !(1..=max).contains(&v) {
                    this.err(
                        d.span(),
                        format!(
                            "`{key} = {:?}` must be between 1s and {}",
                            d.get_ref(),
                            format_duration(max)
                        ),
                    );
                    return None;
                }
                Some(v)
            }
        };
        let refresh_secs = secs(
            self,
            &s.refresh,
            "refresh",
            Remote::DEFAULT_REFRESH_SECS,
            Remote::MAX_REFRESH_SECS,
        )?;
        let timeout_secs = secs(
            self,
            &s.timeout,
            "timeout",
            Remote::DEFAULT_TIMEOUT_SECS,
            Remote::MAX_TIMEOUT_SECS,
        )?;
        let auth = self.auth(s)?;
        Some(Some(Remote {
            url: u.clone(),
            refresh_secs,
            timeout_secs,
            auth,
        }))
    }

    /// `auth_header` with `auth_file`: both or neither, a header name as HTTP allows.
    fn auth(&mut self, s: &RawSource) -> Option<Option<Auth>> {
        match (&s.auth_header, &s.auth_file) {
            (None, None) => Some(None),
            (Some(h), Some(f)) => {
                // RFC 9110 §5.6.2: a field name is a token.
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                let name = h.get_ref();
                if name.is_empty() || !name.chars().all(token) {
                    self.err(
                        h.span(),
                        format!(
                            "`auth_header = {name:?}` is not an HTTP header name (such as `Token` or `Authorization`)"
                        ),
                    );
                    return None;
                }
                if f.get_ref().is_empty() {
                    self.err(
                        f.span(),
                        "`auth_file` is empty: name the file holding the header's value",
                    );
                    return None;
                }
                Some(Some(Auth {
                    header: name.clone(),
                    file: f.get_ref().clone(),
                }))
            }
            (Some(one), None) | (None, Some(one)) => {
                let (has, lacks) = if s.auth_header.is_some() {
                    ("auth_header", "auth_file")
                } else {
                    ("auth_file", "auth_header")
                };
                self.err(one.span(), format!("`{has}` needs `{lacks}` too"));
                None
            }
        }
    }

    pub(super) fn source(&mut self, name: &Spanned<String>, src: &Spanned<RawSource>) -> Option<SourceDef> {
        let s: &RawSource = src.get_ref();
        let n = name.get_ref();
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.err(
                name.span(),
                format!("source name `{n}` may only hold letters, digits, `-` and `_`"),
            );
        }
        let kind = SourceKind::parse(s.kind.get_ref());
        if kind.is_none() {
            let msg = format!(
                "unknown source kind `{}`, expected one of: {}{}",
                s.kind.get_ref(),
                SourceKind::ALL.map(|k| k.as_str()).join(", "),
                hint(s.kind.get_ref(), SourceKind::ALL.iter().map(|k| k.as_str()))
            );
            self.err(s.kind.span(), msg);
        }
        let remote = self.remote(name, s);
        let path = match &s.path {
            Some(p) if p.get_ref().trim().is_empty() => {
                self.err(p.span(), "`path` is empty");
                None
            }
            Some(p) => Some(p.get_ref().clone()),
            None if s.url.is_some() => {
                self.err(
                    src.span(),
                    format!(
                        "`url` source `{n}` also needs a `path`: where the last good copy is kept, so that a restart without network still serves (like \"/var/lib/editgate/{n}\")"
                    ),
                );
                None
            }
            None => {
                self.err(src.span(), format!("source `{n}` needs a `path`"));
                None
            }
        };
        let list_only = |this: &mut Self, key: &str, span: Option<Range<usize>>| {
            if let (Some(span), Some(k)) = (span, kind)
                && !k.has_entries()
            {
                this.err(
                    span,
                    format!(
                        "`{key}` only applies to sources that count entries (`tor-exits`, `ip-list`, `spur-feed`), not `{k}`"
                    ),
                );
            }
        };
        list_only(self, "min_entries", s.min_entries.as_ref().map(Spanned::span));
        list_only(self, "max_shrink", s.max_shrink.as_ref().map(Spanned::span));
        let min_entries = s.min_entries.as_ref().map(|m| *m.get_ref());
        let max_shrink = match &s.max_shrink {
            None => SourceDef::DEFAULT_MAX_SHRINK,
            Some(m) if (0.0..=1.0).contains(m.get_ref()) => *m.get_ref(),
            Some(m) => {
                self.err(
                    m.span(),
                    format!(
                        "`max_shrink = {}` must be between 0 and 1 (the fraction of its entries a list may lose in one update)",
                        m.get_ref()
                    ),
                );
                SourceDef::DEFAULT_MAX_SHRINK
            }
        };
        if s.mask_host_bits == Some(true) && kind.is_some_and(|k| k != SourceKind::IpList) {
            self.err(src.span(), "`mask_host_bits` only applies to `ip-list` sources");
        }
        let max_bytes = match &s.max_bytes {
            Some(m) if *m.get_ref() == 0 => {
                self.err(m.span(), "`max_bytes = 0` would refuse every file");
                0
            }
            Some(m) => *m.get_ref(),
            None if kind.is_some_and(SourceKind::is_network_list) => SourceDef::DEFAULT_MAX_BYTES_LIST,
            None if kind == Some(SourceKind::SpurFeed) => SourceDef::DEFAULT_MAX_BYTES_FEED,
            None => SourceDef::DEFAULT_MAX_BYTES_DATABASE,
        };
        let max_age_secs = s.max_age.as_ref().and_then(|d| self.duration(d, "max_age"));
        let mut flags = Vec::new();
        match (&s.flags, kind) {
            (Some(list), Some(SourceKind::MaxmindAnonymous)) => {
                for f in list.get_ref() {
                    match AnonFlag::parse(f.get_ref()) {
                        Some(flag) => flags.push(flag),
                        None => {
                            let msg = format!(
                                "unknown MaxMind flag `{}`, expected one of: {}{}",
                                f.get_ref(),
                                AnonFlag::ALL.map(|f| f.as_str()).join(", "),
                                hint(f.get_ref(), AnonFlag::ALL.iter().map(|f| f.as_str()))
                            );
                            self.err(f.span(), msg);
                        }
                    }
                }
                if list.get_ref().is_empty() {
                    self.err(
                        list.span(),
                        "`flags` is empty: name at least one flag, like `is_anonymous_vpn`",
                    );
                }
            }
            (None, Some(SourceKind::MaxmindAnonymous)) => self.err(
                src.span(),
                format!(
                    "`maxmind-anonymous` source `{n}` needs `flags`, like [\"is_anonymous_vpn\", \"is_public_proxy\"]"
                ),
            ),
            (Some(list), Some(k)) => self.err(
                list.span(),
                format!("`flags` only applies to `maxmind-anonymous` sources, not `{k}`"),
            ),
            (_, _) => {}
        }
        let holds_addresses = kind.is_some_and(|k| !matches!(k, SourceKind::MaxmindAsn | SourceKind::MaxmindCountry));
        let tag = s.tag.as_ref().and_then(|t| {
            let v = t.get_ref();
            if !holds_addresses {
                self.err(t.span(), "`tag` only applies to sources that hold addresses (lists and `maxmind-anonymous`)");
                return None;
            }
            if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
                self.err(
                    t.span(),
                    format!(
                        "`tag = \"{}\"`: a change tag is 1 to 64 lower-case letters, digits, `-` and `_` (like `tor`): the wiki names its messages after it",
                        crate::sources::snippet(v)
                    ),
                );
                return None;
            }
            Some(v.clone())
        });
        if s.shared == Some(true) && !holds_addresses {
            self.err(
                src.span(),
                "`shared` only applies to sources that hold addresses (lists and `maxmind-anonymous`)",
            );
        }
        Some(SourceDef {
            name: n.clone(),
            tag,
            shared: s.shared.unwrap_or(false),
            kind: kind?,
            path: path?,
            remote: remote.unwrap_or(None),
            min_entries,
            max_shrink,
            mask_host_bits: s.mask_host_bits.unwrap_or(false),
            max_bytes,
            max_age_secs,
            flags,
            location: self.location(name.span()),
        })
    }
}
