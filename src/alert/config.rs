//! router.yml: Alertmanager's configuration format (`global`, `route`, `receivers`,
//! `inhibit_rules`, `time_intervals`, `templates`), read, checked and compiled into what the
//! router runs: the route tree, receivers, inhibit rules and named time intervals.
//!
//! Unknown keys and YAML errors carry `file:line:col`; validation errors name the field
//! (`route.routes[1].group_by: duplicated label "job" in group_by`) and use Alertmanager's
//! wording. The effective configuration prints back as Alertmanager YAML, which amtool
//! reads from `/api/v2/status`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::matcher::{MatchOp, Matcher, parse_matchers};
use super::notify::chat::{DiscordConfig, MsTeamsConfig, SlackConfig, TelegramConfig};
use super::notify::email::{EmailConfig, EmailTarget};
use super::notify::incident::{OpsgenieConfig, PagerDutyConfig};
use super::notify::template::Templates;
use super::route::{GroupBy, RouteNode, RouteTree};
use super::timeinterval::NamedTimeInterval;
use crate::config::{HttpClientConfig, PromDuration};

#[derive(Debug, thiserror::Error)]
pub enum RouterConfigError {
    #[error("reading {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{message}")]
    Parse { file: String, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

// ---------------------------------------------------------------------------------------
// The file as written.

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfigFile {
    #[serde(default)]
    pub global: GlobalFile,
    pub route: Option<RouteFile>,
    #[serde(default)]
    pub receivers: Vec<ReceiverFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<Option<InhibitRuleFile>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub templates: Vec<String>,
}

/// `global`: only what vigie's integrations read is typed; the rest of Alertmanager's
/// global keys are accepted and kept so a shared file loads unchanged.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    #[serde(default = "default_smtp_hello")]
    pub smtp_hello: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Option<String>,
    #[serde(default = "yes")]
    pub smtp_require_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    #[serde(default = "default_opsgenie_url")]
    pub opsgenie_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    #[serde(default = "default_telegram_url")]
    pub telegram_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webex_api_url: Option<String>,
}

impl Default for GlobalFile {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults of global")
    }
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration::from_secs(300)
}
fn default_smtp_hello() -> String {
    "localhost".into()
}
fn yes() -> bool {
    true
}
fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn default_opsgenie_url() -> String {
    "https://api.opsgenie.com/".into()
}
fn default_telegram_url() -> String {
    "https://api.telegram.org".into()
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    #[serde(rename = "match", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_equal: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteFile>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleFile {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// The integrations Alertmanager knows. Kinds vigie cannot deliver yet are parsed but make
/// the configuration invalid, so nothing is silently dropped.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverFile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerDutyConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opsgenie_configs: Vec<OpsgenieConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msteams_configs: Vec<MsTeamsConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discord_configs: Vec<DiscordConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telegram_configs: Vec<TelegramConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wechat_configs: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushover_configs: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub victorops_configs: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sns_configs: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webex_configs: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
}

// ---------------------------------------------------------------------------------------
// What the router runs.

/// One way a receiver delivers, with its position among the receiver's integrations of
/// the same kind (the notification log keys on both).
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub kind: IntegrationKind,
    pub index: usize,
    pub send_resolved: bool,
}

impl Integration {
    /// The name Alertmanager uses in metrics and the notification log.
    pub fn name(&self) -> &'static str {
        match self.kind {
            IntegrationKind::Webhook(_) => "webhook",
            IntegrationKind::Slack(_) => "slack",
            IntegrationKind::Email(_) => "email",
            IntegrationKind::PagerDuty(_) => "pagerduty",
            IntegrationKind::Opsgenie(_) => "opsgenie",
            IntegrationKind::MsTeams(_) => "msteams",
            IntegrationKind::Discord(_) => "discord",
            IntegrationKind::Telegram(_) => "telegram",
        }
    }

    /// The HTTP client settings of the integration (email has none).
    pub fn http(&self) -> HttpClientConfig {
        let h = match &self.kind {
            IntegrationKind::Webhook(w) => return w.http.clone(),
            IntegrationKind::Slack(c) => &c.http_config,
            IntegrationKind::Email(_) => &None,
            IntegrationKind::PagerDuty(c) => &c.http_config,
            IntegrationKind::Opsgenie(c) => &c.http_config,
            IntegrationKind::MsTeams(c) => &c.http_config,
            IntegrationKind::Discord(c) => &c.http_config,
            IntegrationKind::Telegram(c) => &c.http_config,
        };
        h.clone().unwrap_or_default()
    }

    /// At most this many alerts per notification (webhook's `max_alerts`; 0 = all).
    pub fn max_alerts(&self) -> usize {
        match &self.kind {
            IntegrationKind::Webhook(w) => w.max_alerts,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum IntegrationKind {
    Webhook(Box<WebhookTarget>),
    Slack(Box<SlackConfig>),
    Email(Box<EmailTarget>),
    PagerDuty(Box<PagerDutyConfig>),
    Opsgenie(Box<OpsgenieConfig>),
    MsTeams(Box<MsTeamsConfig>),
    Discord(Box<DiscordConfig>),
    Telegram(Box<TelegramConfig>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookTarget {
    pub url: String,
    pub http: HttpClientConfig,
    pub max_alerts: usize,
    pub timeout_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// A compiled, valid router configuration.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// The effective configuration as Alertmanager YAML (defaults filled in, secrets hidden).
    pub original: String,
    pub resolve_timeout_ms: i64,
    pub tree: RouteTree,
    pub receivers: HashMap<String, Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: HashMap<String, NamedTimeInterval>,
    pub templates: Templates,
    /// Global API endpoints integrations fall back to.
    pub globals: Globals,
}

#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub pagerduty_url: String,
    pub opsgenie_api_url: String,
    pub opsgenie_api_key: Option<String>,
    pub telegram_api_url: String,
}

impl RouterConfig {
    /// Used when no `--router-config` is given: one receiver that delivers nowhere, so the
    /// API works and alerts can be inspected and silenced.
    pub fn default_config() -> RouterConfig {
        load_str(DEFAULT_YAML, "<default>", Path::new(".")).expect("the embedded router config is valid")
    }

    pub fn receiver_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.receivers.keys().cloned().collect();
        v.sort();
        v
    }
}

const DEFAULT_YAML: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

pub fn load_file(path: &Path) -> Result<RouterConfig, RouterConfigError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| RouterConfigError::Read { file: file.clone(), source })?;
    load_str(&text, &file, path.parent().unwrap_or(Path::new(".")))
}

pub fn load_str(text: &str, file: &str, base_dir: &Path) -> Result<RouterConfig, RouterConfigError> {
    compile_file(parse_str(text, file)?, file, base_dir)
}

/// Reads a router configuration without compiling it (to graft `AlertRoute`s onto it).
pub fn read_file(path: &Path) -> Result<RouterConfigFile, RouterConfigError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| RouterConfigError::Read { file: file.clone(), source })?;
    parse_str(&text, &file)
}

/// The default configuration as written.
pub fn default_file() -> RouterConfigFile {
    parse_str(DEFAULT_YAML, "<default>").expect("the embedded router config is valid")
}

pub fn parse_str(text: &str, file: &str) -> Result<RouterConfigFile, RouterConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = crate::config::yaml_error_parts(&e);
        RouterConfigError::Parse { file: file.to_string(), message: format!("{line}:{column}: {message}") }
    })
}

/// Validates and compiles a configuration as written.
pub fn compile_file(f: RouterConfigFile, file: &str, base_dir: &Path) -> Result<RouterConfig, RouterConfigError> {
    compile(f, base_dir).map_err(|message| RouterConfigError::Invalid { file: file.to_string(), message })
}

fn compile(mut f: RouterConfigFile, base_dir: &Path) -> Result<RouterConfig, String> {
    let Some(root) = f.route.clone() else { return Err("no route provided in config".into()) };
    if root.continue_matching {
        return Err("route: cannot have continue in root route".into());
    }
    let mut receivers = HashMap::new();
    for (i, r) in f.receivers.iter().enumerate() {
        let at = format!("receivers[{i}]");
        if r.name.is_empty() {
            return Err(format!("{at}: missing name in receiver"));
        }
        let compiled = compile_receiver(r, &f.global, base_dir).map_err(|e| format!("{at} ({:?}): {e}", r.name))?;
        if receivers.insert(r.name.clone(), compiled).is_some() {
            return Err(format!("{at}: notification config name {:?} is not unique", r.name));
        }
    }
    let mut time_intervals = HashMap::new();
    for (field, list) in [("mute_time_intervals", &f.mute_time_intervals), ("time_intervals", &f.time_intervals)] {
        for (i, ti) in list.iter().enumerate() {
            if ti.name.is_empty() {
                let what = if field == "time_intervals" { "time interval" } else { "mute time interval" };
                return Err(format!("{field}[{i}]: missing name in {what}"));
            }
            if time_intervals.insert(ti.name.clone(), ti.clone()).is_some() {
                let what = if field == "time_intervals" { "time interval" } else { "mute time interval" };
                return Err(format!("{field}[{i}]: {what} {:?} is not unique", ti.name));
            }
        }
    }
    if root.receiver.as_deref().unwrap_or("").is_empty() {
        return Err("route: root route must specify a default receiver".into());
    }
    if !root.matchers.is_empty() || !root.match_equal.is_empty() || !root.match_re.is_empty() {
        return Err("route: root route must not have any matchers".into());
    }
    if !root.mute_time_intervals.is_empty() {
        return Err("route: root route must not have any mute time intervals".into());
    }
    if !root.active_time_intervals.is_empty() {
        return Err("route: root route must not have any active time intervals".into());
    }
    let mut tree = RouteTree { nodes: Vec::new() };
    compile_route(&root, None, 0, "route", &mut tree, &receivers, &time_intervals)?;
    let mut inhibit_rules = Vec::new();
    for (i, r) in f.inhibit_rules.iter().enumerate() {
        let Some(r) = r else { continue };
        let at = format!("inhibit_rules[{i}]");
        let source = legacy_and_matchers(&r.source_match, &r.source_match_re, &r.source_matchers)
            .map_err(|e| format!("{at}.source: {e}"))?;
        let target = legacy_and_matchers(&r.target_match, &r.target_match_re, &r.target_matchers)
            .map_err(|e| format!("{at}.target: {e}"))?;
        for name in &r.equal {
            if !crate::model::is_utf8_label_name(name) {
                return Err(format!("{at}.equal: invalid label name {name:?}"));
            }
        }
        inhibit_rules.push(InhibitRule { source, target, equal: r.equal.clone() });
    }
    let resolve_timeout_ms = f.global.resolve_timeout.as_millis();
    let mut files = Vec::new();
    for pattern in &f.templates {
        let full = base_dir.join(pattern);
        let matched = glob::glob(&full.to_string_lossy()).map_err(|e| format!("templates: {pattern:?}: {e}"))?;
        files.extend(matched.flatten());
    }
    let templates = Templates::load(&files).map_err(|e| format!("templates: {e}"))?;
    for (name, r) in &receivers {
        check_templates(r, &templates).map_err(|e| format!("receiver {name:?}: {e}"))?;
    }
    let globals = Globals {
        pagerduty_url: f.global.pagerduty_url.clone(),
        opsgenie_api_url: f.global.opsgenie_api_url.clone(),
        opsgenie_api_key: f.global.opsgenie_api_key.clone(),
        telegram_api_url: f.global.telegram_api_url.clone(),
    };
    hide_secrets(&mut f);
    let original = serde_saphyr::to_string(&f).map_err(|e| format!("printing the effective config: {e}"))?;
    Ok(RouterConfig {
        original,
        resolve_timeout_ms,
        tree,
        receivers,
        inhibit_rules,
        time_intervals,
        templates,
        globals,
    })
}

fn compile_receiver(r: &ReceiverFile, g: &GlobalFile, base_dir: &Path) -> Result<Receiver, String> {
    let unsupported = [
        ("wechat_configs", r.wechat_configs.len()),
        ("pushover_configs", r.pushover_configs.len()),
        ("victorops_configs", r.victorops_configs.len()),
        ("sns_configs", r.sns_configs.len()),
        ("webex_configs", r.webex_configs.len()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, n)| *n > 0) {
        return Err(format!("{field}: this integration is not supported by vigie yet"));
    }
    let mut integrations = Vec::new();
    for (i, w) in r.webhook_configs.iter().enumerate() {
        let at = format!("webhook_configs[{i}]");
        let url = match (&w.url, &w.url_file) {
            (Some(_), Some(_)) => return Err(format!("{at}: at most one of url & url_file must be configured")),
            (Some(u), None) => u.clone(),
            (None, Some(file)) => {
                let path = base_dir.join(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("{at}.url_file: reading {}: {e}", path.display()))?
                    .trim()
                    .to_string()
            }
            (None, None) => return Err(format!("{at}: one of url or url_file must be configured")),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{at}.url: scheme required for webhook url"));
        }
        let target = WebhookTarget {
            url,
            http: w.http_config.clone().unwrap_or_default(),
            max_alerts: w.max_alerts as usize,
            timeout_ms: w.timeout.map(|t| t.as_millis()).filter(|t| *t > 0),
        };
        integrations.push(Integration {
            kind: IntegrationKind::Webhook(Box::new(target)),
            index: i,
            send_resolved: w.send_resolved,
        });
    }
    compile_integrations(r, g, &mut integrations)?;
    Ok(Receiver { name: r.name.clone(), integrations })
}

/// The non-webhook integrations, with `global` filling what an entry leaves out.
fn compile_integrations(r: &ReceiverFile, g: &GlobalFile, out: &mut Vec<Integration>) -> Result<(), String> {
    for (i, c) in r.slack_configs.iter().enumerate() {
        let mut c = c.clone();
        if c.api_url.is_none() && c.api_url_file.is_none() {
            c.api_url.clone_from(&g.slack_api_url);
            c.api_url_file.clone_from(&g.slack_api_url_file);
        }
        if c.api_url.is_none() && c.api_url_file.is_none() {
            return Err(format!("slack_configs[{i}]: no global Slack API URL set either inline or in a file"));
        }
        out.push(Integration { send_resolved: c.send_resolved, kind: IntegrationKind::Slack(Box::new(c)), index: i });
    }
    for (i, c) in r.email_configs.iter().enumerate() {
        let at = format!("email_configs[{i}]");
        let smarthost = c
            .smarthost
            .clone()
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or(format!("{at}: no global SMTP smarthost set"))?;
        let from = c.from.clone().or_else(|| g.smtp_from.clone()).ok_or(format!("{at}: no global SMTP from set"))?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.trim_matches(['[', ']']).to_string(), p)))
            .ok_or(format!("{at}.smarthost: address {smarthost:?}: port cannot be empty"))?;
        if c.to.is_empty() {
            return Err(format!("{at}: missing to address in email config"));
        }
        let password =
            match (&c.auth_password, &c.auth_password_file, &g.smtp_auth_password, &g.smtp_auth_password_file) {
                (Some(p), ..) => Some(p.clone()),
                (None, Some(f), ..) => Some(
                    std::fs::read_to_string(f).map_err(|e| format!("{at}.auth_password_file: {e}"))?.trim().to_string(),
                ),
                (None, None, Some(p), _) => Some(p.clone()),
                (None, None, None, Some(f)) => Some(
                    std::fs::read_to_string(f)
                        .map_err(|e| format!("global.smtp_auth_password_file: {e}"))?
                        .trim()
                        .to_string(),
                ),
                _ => None,
            };
        let target = EmailTarget {
            config: c.clone(),
            from,
            hello: c.hello.clone().unwrap_or_else(|| g.smtp_hello.clone()),
            host,
            port,
            username: c.auth_username.clone().or_else(|| g.smtp_auth_username.clone()),
            password,
            require_tls: c.require_tls.unwrap_or(g.smtp_require_tls),
        };
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::Email(Box::new(target)),
            index: i,
        });
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        if c.routing_key.is_none() && c.routing_key_file.is_none() {
            return Err(format!("pagerduty_configs[{i}]: missing routing key in PagerDuty config"));
        }
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::PagerDuty(Box::new(c.clone())),
            index: i,
        });
    }
    for (i, c) in r.opsgenie_configs.iter().enumerate() {
        if c.api_key.is_none()
            && c.api_key_file.is_none()
            && g.opsgenie_api_key.is_none()
            && g.opsgenie_api_key_file.is_none()
        {
            return Err(format!("opsgenie_configs[{i}]: no global OpsGenie API Key set either inline or in a file"));
        }
        let mut c = c.clone();
        if c.api_key.is_none() && c.api_key_file.is_none() {
            c.api_key.clone_from(&g.opsgenie_api_key);
            c.api_key_file.clone_from(&g.opsgenie_api_key_file);
        }
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::Opsgenie(Box::new(c)),
            index: i,
        });
    }
    for (i, c) in r.msteams_configs.iter().enumerate() {
        if c.webhook_url.is_none() && c.webhook_url_file.is_none() {
            return Err(format!("msteams_configs[{i}]: one of webhook_url or webhook_url_file must be configured"));
        }
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::MsTeams(Box::new(c.clone())),
            index: i,
        });
    }
    for (i, c) in r.discord_configs.iter().enumerate() {
        if c.webhook_url.is_none() && c.webhook_url_file.is_none() {
            return Err(format!("discord_configs[{i}]: no discord webhook URL provided"));
        }
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::Discord(Box::new(c.clone())),
            index: i,
        });
    }
    for (i, c) in r.telegram_configs.iter().enumerate() {
        if c.bot_token.is_none() && c.bot_token_file.is_none() {
            return Err(format!("telegram_configs[{i}]: missing bot_token or bot_token_file on telegram_config"));
        }
        if c.chat_id == 0 {
            return Err(format!("telegram_configs[{i}]: missing chat_id on telegram_config"));
        }
        out.push(Integration {
            send_resolved: c.send_resolved,
            kind: IntegrationKind::Telegram(Box::new(c.clone())),
            index: i,
        });
    }
    Ok(())
}

/// Every templated field must parse, so a typo fails the load instead of a notification.
fn check_templates(r: &Receiver, t: &Templates) -> Result<(), String> {
    let mut texts: Vec<&str> = Vec::new();
    for i in &r.integrations {
        match &i.kind {
            IntegrationKind::Webhook(_) => {}
            IntegrationKind::Slack(c) => texts.extend([
                c.title.as_str(),
                &c.text,
                &c.pretext,
                &c.fallback,
                &c.username,
                &c.color,
                &c.footer,
                &c.title_link,
            ]),
            IntegrationKind::Email(e) => {
                texts.extend([e.config.html.as_str(), &e.config.text]);
                texts.extend(e.config.headers.values().map(String::as_str));
            }
            IntegrationKind::PagerDuty(c) => {
                texts.extend([c.description.as_str(), &c.client, &c.client_url]);
                texts.extend(c.details.values().map(String::as_str));
            }
            IntegrationKind::Opsgenie(c) => texts.extend([c.message.as_str(), &c.description, &c.source]),
            IntegrationKind::MsTeams(c) => texts.extend([c.title.as_str(), &c.summary, &c.text]),
            IntegrationKind::Discord(c) => texts.extend([c.title.as_str(), &c.message]),
            IntegrationKind::Telegram(c) => texts.push(&c.message),
        }
    }
    for text in texts {
        t.check(text).map_err(|e| format!("template {text:?}: {e}"))?;
    }
    Ok(())
}

/// `match`, `match_re` and `matchers` of a route or one side of an inhibit rule, in that
/// order, as Alertmanager appends them.
fn legacy_and_matchers(
    equal: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    matchers: &[String],
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in equal {
        if !crate::model::is_legacy_label_name(k) {
            return Err(format!("invalid label name {k:?}"));
        }
        out.push(Matcher::equal(k, v));
    }
    for (k, v) in re {
        if !crate::model::is_legacy_label_name(k) {
            return Err(format!("invalid label name {k:?}"));
        }
        // The legacy form keeps the anchors in its printed value (route keys show them).
        let m = Matcher::new(k.clone(), MatchOp::Regex, format!("^(?:{v})$"))
            .map_err(|_| format!("invalid regexp value for {k:?}"))?;
        out.push(m);
    }
    for line in matchers {
        out.extend(parse_matchers(line).map_err(|e| format!("matchers: {e}"))?);
    }
    Ok(out)
}

fn compile_route(
    r: &RouteFile,
    parent: Option<usize>,
    sibling_index: usize,
    at: &str,
    tree: &mut RouteTree,
    receivers: &HashMap<String, Receiver>,
    intervals: &HashMap<String, NamedTimeInterval>,
) -> Result<usize, String> {
    let inherited = parent.map(|p| tree.nodes[p].clone());
    let mut group_by = inherited.as_ref().map(|p| p.group_by.clone()).unwrap_or(GroupBy::Labels(Vec::new()));
    if let Some(list) = &r.group_by {
        let all = list.iter().any(|l| l == "...");
        let mut seen = HashSet::new();
        for l in list.iter().filter(|l| *l != "...") {
            if !crate::model::is_utf8_label_name(l) {
                return Err(format!("{at}.group_by: invalid label name {l:?} in group_by list"));
            }
            if !seen.insert(l.clone()) {
                return Err(format!("{at}.group_by: duplicated label {l:?} in group_by"));
            }
        }
        if all && list.len() > 1 {
            return Err(format!(
                "{at}.group_by: cannot have wildcard group_by (`...`) and other other labels at the same time"
            ));
        }
        // An explicit empty list keeps the parent's grouping, as Alertmanager 0.25 does.
        if all {
            group_by = GroupBy::All;
        } else if !list.is_empty() {
            group_by = GroupBy::Labels(list.clone());
        }
    }
    if r.group_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(format!("{at}.group_interval: group_interval cannot be zero"));
    }
    if r.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(format!("{at}.repeat_interval: repeat_interval cannot be zero"));
    }
    let receiver = match &r.receiver {
        Some(name) if !name.is_empty() => name.clone(),
        _ => inherited.as_ref().map(|p| p.receiver.clone()).unwrap_or_default(),
    };
    if !receivers.contains_key(&receiver) {
        return Err(format!("{at}.receiver: undefined receiver {receiver:?} used in route"));
    }
    for name in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        if !intervals.contains_key(name) {
            return Err(format!("{at}: undefined time interval {name:?} used in route"));
        }
    }
    let mut matchers =
        legacy_and_matchers(&r.match_equal, &r.match_re, &r.matchers).map_err(|e| format!("{at}: {e}"))?;
    matchers.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let set = super::matcher::format_set(&matchers);
    let (key, id) = match &inherited {
        None => (set.clone(), set.clone()),
        Some(p) => (format!("{}/{set}", p.key), format!("{}/{set}/{sibling_index}", p.id)),
    };
    let ms = |d: Option<PromDuration>, parent: Option<i64>, default: i64| {
        d.map(|d| d.as_millis()).or(parent).unwrap_or(default)
    };
    let node = RouteNode {
        parent,
        key,
        id,
        receiver,
        group_by,
        group_wait_ms: ms(r.group_wait, inherited.as_ref().map(|p| p.group_wait_ms), 30_000),
        group_interval_ms: ms(r.group_interval, inherited.as_ref().map(|p| p.group_interval_ms), 300_000),
        repeat_interval_ms: ms(r.repeat_interval, inherited.as_ref().map(|p| p.repeat_interval_ms), 4 * 3_600_000),
        matchers,
        continue_matching: r.continue_matching,
        mute_time_intervals: r.mute_time_intervals.clone(),
        active_time_intervals: r.active_time_intervals.clone(),
        children: Vec::new(),
    };
    let index = tree.nodes.len();
    tree.nodes.push(node);
    for (i, child) in r.routes.iter().enumerate() {
        let c = compile_route(child, Some(index), i, &format!("{at}.routes[{i}]"), tree, receivers, intervals)?;
        tree.nodes[index].children.push(c);
    }
    Ok(index)
}

fn hide_secrets(f: &mut RouterConfigFile) {
    let secret = |s: &mut Option<String>| {
        if s.is_some() {
            *s = Some("<secret>".into());
        }
    };
    let g = &mut f.global;
    for s in [
        &mut g.smtp_auth_password,
        &mut g.smtp_auth_secret,
        &mut g.opsgenie_api_key,
        &mut g.wechat_api_secret,
        &mut g.victorops_api_key,
        &mut g.slack_api_url,
    ] {
        secret(s);
    }
    let http = |h: &mut Option<HttpClientConfig>| {
        if let Some(h) = h {
            if let Some(b) = &mut h.basic_auth {
                secret(&mut b.password);
            }
            if let Some(a) = &mut h.authorization {
                secret(&mut a.credentials);
            }
            secret(&mut h.bearer_token);
        }
    };
    http(&mut g.http_config);
    for r in &mut f.receivers {
        for w in &mut r.webhook_configs {
            http(&mut w.http_config);
        }
        for c in &mut r.slack_configs {
            secret(&mut c.api_url);
            http(&mut c.http_config);
        }
        for c in &mut r.email_configs {
            secret(&mut c.auth_password);
            secret(&mut c.auth_secret);
        }
        for c in &mut r.pagerduty_configs {
            secret(&mut c.routing_key);
            http(&mut c.http_config);
        }
        for c in &mut r.opsgenie_configs {
            secret(&mut c.api_key);
            http(&mut c.http_config);
        }
        for c in &mut r.msteams_configs {
            secret(&mut c.webhook_url);
            http(&mut c.http_config);
        }
        for c in &mut r.discord_configs {
            secret(&mut c.webhook_url);
            http(&mut c.http_config);
        }
        for c in &mut r.telegram_configs {
            secret(&mut c.bot_token);
            http(&mut c.http_config);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<RouterConfig, String> {
        load_str(yaml, "router.yml", Path::new(".")).map_err(|e| e.to_string())
    }

    const RECEIVERS: &str = "receivers:\n  - name: a\n  - name: b\n";

    #[test]
    fn validation_errors_name_the_field() {
        let cases = [
            ("global: {resolve_timeout: 1m}\n", "router.yml: no route provided in config"),
            ("route: {receiver: a, continue: true}\n", "router.yml: route: cannot have continue in root route"),
            ("route: {}\n", "router.yml: route: root route must specify a default receiver"),
            ("route: {receiver: a, matchers: ['x=y']}\n", "router.yml: route: root route must not have any matchers"),
            (
                "route: {receiver: a, routes: [{receiver: nope}]}\n",
                "router.yml: route.routes[0].receiver: undefined receiver \"nope\" used in route",
            ),
            (
                "route: {receiver: a, routes: [{group_by: [x, x]}]}\n",
                "router.yml: route.routes[0].group_by: duplicated label \"x\" in group_by",
            ),
            (
                "route: {receiver: a, routes: [{group_by: ['...', x]}]}\n",
                "router.yml: route.routes[0].group_by: cannot have wildcard group_by (`...`) and other other labels at the same time",
            ),
            (
                "route: {receiver: a, routes: [{group_interval: 0s}]}\n",
                "router.yml: route.routes[0].group_interval: group_interval cannot be zero",
            ),
            (
                "route: {receiver: a, routes: [{mute_time_intervals: [x]}]}\n",
                "router.yml: route.routes[0]: undefined time interval \"x\" used in route",
            ),
            (
                "route: {receiver: a, routes: [{matchers: ['a=\"b']}]}\n",
                "router.yml: route.routes[0]: matchers: matcher value contains unescaped double quote: \"b",
            ),
        ];
        for (yaml, want) in cases {
            let got = load(&format!("{yaml}{RECEIVERS}")).unwrap_err();
            assert_eq!(got, want, "{yaml}");
        }
        let dup = load("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n").unwrap_err();
        assert_eq!(dup, "router.yml: receivers[1]: notification config name \"a\" is not unique");
        let unknown = load("route: {receiver: a, recever: b}\nreceivers: [{name: a}]\n").unwrap_err();
        assert!(unknown.starts_with("router.yml:1:"), "{unknown}");
        let slack = load("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: x}]}]\n").unwrap_err();
        assert!(slack.contains("slack_configs[0]: no global Slack API URL set either inline or in a file"), "{slack}");
        let wechat =
            load("route: {receiver: a}\nreceivers: [{name: a, wechat_configs: [{corp_id: x}]}]\n").unwrap_err();
        assert!(wechat.contains("wechat_configs: this integration is not supported by vigie yet"), "{wechat}");
        let bad_template =
            load("route: {receiver: a}\nreceivers: [{name: a, discord_configs: [{webhook_url: 'http://x', title: '{{ .X'}]}]\n")
                .unwrap_err();
        assert!(bad_template.contains("receiver \"a\": template \"{{ .X\""), "{bad_template}");
        let ok = load(
            "global: {slack_api_url: 'http://slack', smtp_smarthost: 'mail:25', smtp_from: 'am@x'}\nroute: {receiver: a}\n\
             receivers: [{name: a, slack_configs: [{channel: '#x'}], email_configs: [{to: 'ops@x'}]}]\n",
        )
        .unwrap();
        let names: Vec<&str> = ok.receivers["a"].integrations.iter().map(|i| i.name()).collect();
        assert_eq!(names, ["slack", "email"]);
        assert!(!ok.receivers["a"].integrations[0].send_resolved, "slack does not send resolved by default");
    }

    #[test]
    fn defaults_and_inheritance() {
        let c = load(&format!(
            "route:\n  receiver: a\n  group_by: ['...']\n  routes:\n    - matchers: ['x=\"1\"']\n      group_wait: 1s\n      routes:\n        - receiver: b\n          group_by: [foo]\n{RECEIVERS}"
        ))
        .unwrap();
        let n = &c.tree.nodes;
        assert_eq!(
            (n[0].group_wait_ms, n[0].group_interval_ms, n[0].repeat_interval_ms),
            (30_000, 300_000, 14_400_000)
        );
        assert_eq!((n[1].receiver.as_str(), n[1].group_wait_ms, &n[1].group_by), ("a", 1000, &GroupBy::All));
        assert_eq!((n[2].receiver.as_str(), n[2].group_wait_ms), ("b", 1000));
        assert_eq!(n[2].group_by, GroupBy::Labels(vec!["foo".into()]));
        assert_eq!(c.resolve_timeout_ms, 300_000);
        assert!(c.original.contains("resolve_timeout: 5m"), "{}", c.original);
        let again = load(&c.original).unwrap();
        assert_eq!(again.original, c.original);
    }

    #[test]
    fn the_effective_config_hides_secrets() {
        let c = load(
            "global: {smtp_auth_password: pw0, slack_api_url: 'http://s/k0', opsgenie_api_key: k1}\nroute: {receiver: a}\n\
             receivers:\n  - name: a\n    slack_configs: [{api_url: 'http://s/k2'}]\n    email_configs: [{to: x@y, smarthost: 'm:25', from: f@y, auth_password: pw3}]\n\
             \x20   pagerduty_configs: [{routing_key: k4}]\n    opsgenie_configs: [{api_key: k5}]\n    msteams_configs: [{webhook_url: 'http://t/k6'}]\n\
             \x20   discord_configs: [{webhook_url: 'http://d/k7'}]\n    telegram_configs: [{bot_token: k8, chat_id: 1}]\n\
             \x20   webhook_configs: [{url: 'http://w/', http_config: {basic_auth: {username: u, password: pw9}}}]\n",
        )
        .unwrap();
        for secret in ["pw0", "k0", "k1", "k2", "pw3", "k4", "k5", "k6", "k7", "k8", "pw9"] {
            assert!(!c.original.contains(secret), "{secret} shown in:\n{}", c.original);
        }
        assert!(c.original.contains("<secret>"));
        // What amtool reads back still loads.
        load(&c.original).unwrap();
    }

    #[test]
    fn a_null_inhibit_rule_loads() {
        let c = load(&format!("route: {{receiver: a}}\ninhibit_rules:\n  -\n{RECEIVERS}")).unwrap();
        assert!(c.inhibit_rules.is_empty());
    }
}
