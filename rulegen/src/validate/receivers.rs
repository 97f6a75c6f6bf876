//! The user's receivers file (`alertmanager.receivers_file`): Alertmanager's
//! own `receivers:` list, which rulegen reads, checks and merges into the
//! generated config but never writes. Checked here: every receiver a route
//! names is defined (did-you-mean), every defined receiver is routed to,
//! each delivers somewhere, no secret is written inline (Alertmanager's
//! `*_file` forms instead), and each secret file is an absolute path that
//! exists (unless the secrets live on another host). What the integrations'
//! own fields mean is left to `amtool check-config` over the merged output.

use crate::diagnostics::{Diagnostic, Pos, Problems, hint};
use crate::model::Receivers;
use crate::spec::{At, Spec};
use crate::yaml::{self, Fields, Node, Value};
use std::path::{Path, PathBuf};

/// Where rulegen may read the files the threshold file names.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// The threshold file's directory on disk; `None` = no file access
    /// (a threshold file that names a receivers file is then refused).
    pub base: Option<PathBuf>,
    /// Check that every `*_file` secret exists. Off when generating on a
    /// machine that does not hold the secrets (`--skip-secret-files`).
    pub check_secret_files: bool,
}

impl Files {
    /// Files beside the threshold file at `thresholds`, secrets checked.
    pub fn beside(thresholds: &Path) -> Files {
        Files {
            base: Some(thresholds.parent().map(Path::to_owned).unwrap_or_default()),
            check_secret_files: true,
        }
    }
}

/// The integrations Alertmanager knows (`<kind>_configs` of a receiver).
pub const INTEGRATIONS: &[&str] = &[
    "discord_configs",
    "email_configs",
    "msteams_configs",
    "opsgenie_configs",
    "pagerduty_configs",
    "pushover_configs",
    "slack_configs",
    "sns_configs",
    "telegram_configs",
    "victorops_configs",
    "webex_configs",
    "webhook_configs",
    "wechat_configs",
];

/// Secret fields and the file form Alertmanager reads them from instead.
/// `api_url` is a secret only for Slack (its webhook URL carries the token).
const SECRETS: &[(&str, &str)] = &[
    ("password", "password_file"),
    ("auth_password", "auth_password_file"),
    ("auth_secret", "auth_secret_file"),
    ("routing_key", "routing_key_file"),
    ("service_key", "service_key_file"),
    ("api_key", "api_key_file"),
    ("bot_token", "bot_token_file"),
    ("token", "token_file"),
    ("user_key", "user_key_file"),
    ("credentials", "credentials_file"),
    ("bearer_token", "bearer_token_file"),
    ("client_secret", "client_secret_file"),
    ("webhook_url", "webhook_url_file"),
];

/// A receiver name the routing uses, with where the threshold file says it.
struct Reference<'a> {
    name: &'a At<String>,
}

fn references(spec: &Spec) -> Vec<Reference<'_>> {
    let am = &spec.alertmanager;
    let mut out: Vec<Reference<'_>> = Vec::new();
    out.extend(am.default_receiver.iter().map(|name| Reference { name }));
    out.extend(am.watchdog.iter().map(|w| Reference { name: &w.receiver }));
    for tier in &spec.severities {
        out.extend(tier.escalation.iter().map(|e| Reference { name: &e.receiver }));
        out.push(Reference { name: &tier.receiver });
    }
    out
}

/// Reads and checks the receivers file named by `spec`. Problems in the
/// threshold file (a routed receiver the file lacks) go to `p`; problems
/// inside the receivers file are returned with its path for reporting.
pub fn load(
    p: &mut Problems,
    spec: &Spec,
    file: &str,
    files: &Files,
    default_receiver: &str,
) -> (Option<Receivers>, Option<(String, Vec<Diagnostic>)>) {
    let Some(named) = &spec.alertmanager.receivers_file else { return (None, None) };
    let relative = Path::new(&named.value);
    if relative.is_absolute() || named.value.trim().is_empty() {
        p.at(
            named.pos,
            &named.path,
            "give the receivers file relative to the threshold file, e.g. alertmanager/receivers.yml",
        );
        return (None, None);
    }
    let shown = Path::new(file).parent().unwrap_or(Path::new("")).join(relative).display().to_string();
    let Some(base) = &files.base else {
        p.at(named.pos, &named.path, format!("{shown} cannot be read here (no directory given to rulegen)"));
        return (None, None);
    };
    let text = match std::fs::read_to_string(base.join(relative)) {
        Ok(text) => text,
        Err(e) => {
            p.at(
                named.pos,
                &named.path,
                format!(
                    "cannot read the receivers file {shown}: {e}; create it (see deploy/alertmanager/receivers.yml) or fix the path"
                ),
            );
            return (None, None);
        }
    };
    let mut q = Problems::default();
    let defined = match yaml::parse(&text) {
        Ok(root) => decode(&mut q, &root, files.check_secret_files),
        Err(d) => {
            q.list.push(d);
            Vec::new()
        }
    };
    let parsed = q.list.is_empty() || !defined.is_empty();
    let refs = references(spec);
    let mut routed: Vec<&str> = refs.iter().map(|r| r.name.value.as_str()).collect();
    if spec.alertmanager.default_receiver.is_none() {
        routed.push(default_receiver);
    }
    let names: Vec<&str> = defined.iter().map(|(n, _, _)| n.as_str()).collect();
    if parsed {
        for r in &refs {
            if !names.contains(&r.name.value.as_str()) {
                p.at(
                    r.name.pos,
                    &r.name.path,
                    format!(
                        "receiver `{}` is not defined in {shown} (it defines {}); add it there or route to one it defines{}",
                        r.name.value,
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
                        hint(&r.name.value, names.iter().copied())
                    ),
                );
            }
        }
        if spec.alertmanager.default_receiver.is_none() && !names.contains(&default_receiver) {
            p.at(
                Pos::default(),
                "alertmanager.default_receiver",
                format!(
                    "the default receiver `{default_receiver}` is not defined in {shown}; set alertmanager.default_receiver to one it defines"
                ),
            );
        }
        for (name, pos, _) in &defined {
            if !routed.contains(&name.as_str()) {
                q.at(
                    *pos,
                    "receivers",
                    format!(
                        "receiver `{name}` is not used by any route of the threshold file (routes use {}); remove it or name it in a tier's `receiver`{}",
                        routed.join(", "),
                        hint(name, routed.iter().copied())
                    ),
                );
            }
        }
    }
    let extra = (!q.list.is_empty()).then(|| {
        q.list.sort();
        q.list.dedup();
        (shown.clone(), q.list)
    });
    let list = defined.into_iter().map(|(name, _, fields)| (name, fields)).collect();
    (Some(Receivers { source: shown, list }), extra)
}

type Defined = Vec<(String, Pos, Vec<(String, Node)>)>;

/// The `receivers:` list: names unique, known integrations, secrets by file.
fn decode(q: &mut Problems, root: &Node, check_files: bool) -> Defined {
    let Some(f) = Fields::open(q, root, "", &["receivers"]) else { return Vec::new() };
    let Some(list) = f.req(q, "receivers") else { return Vec::new() };
    let mut out: Defined = Vec::new();
    let entries = yaml::list(q, list, "receivers", |q, node, path| {
        let mut allowed = vec!["name"];
        allowed.extend_from_slice(INTEGRATIONS);
        let r = Fields::open(q, node, path, &allowed)?;
        let name_node = r.req(q, "name")?;
        let name = yaml::string(q, name_node, &r.path_of("name"))?;
        let mut fields = Vec::new();
        for (key, value) in r.entries() {
            if key.name == "name" || !INTEGRATIONS.contains(&key.name.as_str()) {
                continue;
            }
            secrets(q, value, &r.path_of(&key.name), &key.name, check_files);
            fields.push((key.name.clone(), value.clone()));
        }
        let delivers = fields.iter().any(|(_, v)| matches!(&v.value, Value::Seq(items) if !items.is_empty()));
        if !delivers {
            q.at(
                node.pos,
                path,
                format!(
                    "receiver `{name}` has no integration, so Alertmanager would drop what is routed to it; add one of {}",
                    INTEGRATIONS.join(", ")
                ),
            );
        }
        Some((name, name_node.pos, fields))
    });
    for (name, pos, fields) in entries {
        if out.iter().any(|(n, _, _)| *n == name) {
            q.at(pos, "receivers", format!("duplicate receiver `{name}`"));
            continue;
        }
        out.push((name, pos, fields));
    }
    out
}

/// Refuses inline secrets under `node` and checks every `*_file` secret.
fn secrets(q: &mut Problems, node: &Node, path: &str, integration: &str, check_files: bool) {
    match &node.value {
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                secrets(q, item, &format!("{path}[{i}]"), integration, check_files);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                let field = yaml::join(path, &key.name);
                let secret = SECRETS
                    .iter()
                    .find(|(k, _)| *k == key.name)
                    .map(|(_, f)| *f)
                    .or((key.name == "api_url" && integration == "slack_configs").then_some("api_url_file"));
                match (&value.value, secret) {
                    (Value::Null, _) => {}
                    (_, Some(file_form)) => q.at(
                        key.pos,
                        &field,
                        format!(
                            "`{}` holds a secret written inline; put it in a file readable by Alertmanager and write `{file_form}: /absolute/path` instead",
                            key.name
                        ),
                    ),
                    (Value::Str(text), None) if key.name.ends_with("_file") => {
                        secret_file(q, value, &field, text, check_files);
                    }
                    (Value::Str(text), None) if key.name.ends_with("url") && has_password(text) => q.at(
                        value.pos,
                        &field,
                        "the URL carries a password (user:password@); use `http_config.basic_auth` with `password_file` instead",
                    ),
                    _ => secrets(q, value, &field, integration, check_files),
                }
            }
        }
        _ => {}
    }
}

fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// A `*_file` path: absolute (Alertmanager would resolve a relative one
/// against wherever its config is installed, not where rulegen checks), and
/// an existing file unless the check is off.
fn secret_file(q: &mut Problems, node: &Node, field: &str, path: &str, check_files: bool) {
    let p = Path::new(path);
    if !p.is_absolute() {
        q.at(
            node.pos,
            field,
            format!(
                "secret file `{path}` is relative; write an absolute path (Alertmanager resolves relative ones against the directory of the config it loads)"
            ),
        );
        return;
    }
    if check_files && !p.is_file() {
        q.at(
            node.pos,
            field,
            format!(
                "secret file `{path}` does not exist here; create it, or pass --skip-secret-files when the secrets live only on the Alertmanager host"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_found() {
        assert!(has_password("https://u:pw@hooks.example.com/x"));
        assert!(!has_password("https://hooks.example.com/a@b"));
        assert!(!has_password("http://127.0.0.1:9095/alerts"));
        assert!(!has_password("https://user@example.com/"));
    }
}
