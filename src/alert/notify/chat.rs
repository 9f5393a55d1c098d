//! Chat integrations: Slack (incoming webhooks and `chat.postMessage`), Microsoft Teams
//! (incoming webhook MessageCard), Discord (webhook embeds) and Telegram (Bot API
//! `sendMessage`), each rendering its fields through the notification templates with
//! Alertmanager's defaults.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http_post::{Request, post};
use super::template::Templates;
use super::{NotifyData, NotifyError, go_json};
use crate::config::HttpClientConfig;

fn yes() -> bool {
    true
}

/// Renders `text`, turning a template error into a final (not retried) failure.
pub fn render(t: &Templates, text: &str, data: &NotifyData, integration: &str) -> Result<String, NotifyError> {
    t.render(text, data).map_err(|e| NotifyError { message: format!("{integration}: template: {e}"), retry: false })
}

/// Cuts `s` to at most `max` characters, ending with "…" when cut (Alertmanager's
/// `TruncateInRunes`).
pub fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn secret(inline: &Option<String>, file: &Option<String>, what: &str) -> Result<String, NotifyError> {
    match (inline, file) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| NotifyError { message: format!("reading {what} from {f}: {e}"), retry: false }),
        (None, None) => Err(NotifyError { message: format!("no {what} configured"), retry: false }),
    }
}

// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default = "slack_username")]
    pub username: String,
    #[serde(default = "slack_color")]
    pub color: String,
    #[serde(default = "slack_title")]
    pub title: String,
    #[serde(default = "slack_title_link")]
    pub title_link: String,
    #[serde(default = "slack_pretext")]
    pub pretext: String,
    #[serde(default = "slack_text")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "slack_footer")]
    pub footer: String,
    #[serde(default = "slack_fallback")]
    pub fallback: String,
    #[serde(default = "slack_callback_id")]
    pub callback_id: String,
    #[serde(default = "slack_icon_emoji")]
    pub icon_emoji: String,
    #[serde(default = "slack_icon_url")]
    pub icon_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mrkdwn_in: Vec<String>,
}

fn slack_username() -> String {
    r#"{{ template "slack.default.username" . }}"#.into()
}
fn slack_color() -> String {
    r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into()
}
fn slack_title() -> String {
    r#"{{ template "slack.default.title" . }}"#.into()
}
fn slack_title_link() -> String {
    r#"{{ template "slack.default.titlelink" . }}"#.into()
}
fn slack_pretext() -> String {
    r#"{{ template "slack.default.pretext" . }}"#.into()
}
fn slack_text() -> String {
    r#"{{ template "slack.default.text" . }}"#.into()
}
fn slack_footer() -> String {
    r#"{{ template "slack.default.footer" . }}"#.into()
}
fn slack_fallback() -> String {
    r#"{{ template "slack.default.fallback" . }}"#.into()
}
fn slack_callback_id() -> String {
    r#"{{ template "slack.default.callbackid" . }}"#.into()
}
fn slack_icon_emoji() -> String {
    r#"{{ template "slack.default.iconemoji" . }}"#.into()
}
fn slack_icon_url() -> String {
    r#"{{ template "slack.default.iconurl" . }}"#.into()
}

pub async fn send_slack(
    c: &SlackConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
) -> Result<(), NotifyError> {
    let r = |text: &str| render(t, text, data, "slack");
    let url = secret(&c.api_url, &c.api_url_file, "slack api_url")?;
    let mrkdwn_in = if c.mrkdwn_in.is_empty() {
        vec!["fallback".to_string(), "pretext".into(), "text".into()]
    } else {
        c.mrkdwn_in.clone()
    };
    let mut att = serde_json::Map::new();
    let mut put_nonempty = |k: &str, v: String| {
        if !v.is_empty() {
            att.insert(k.into(), Value::String(v));
        }
    };
    put_nonempty("title", truncate(r(&c.title)?, 1024));
    put_nonempty("title_link", r(&c.title_link)?);
    put_nonempty("pretext", r(&c.pretext)?);
    att.insert("text".into(), Value::String(r(&c.text)?));
    att.insert("fallback".into(), Value::String(r(&c.fallback)?));
    att.insert("callback_id".into(), Value::String(r(&c.callback_id)?));
    if !c.fields.is_empty() {
        let mut fields = Vec::new();
        for f in &c.fields {
            fields.push(
                json!({"title": r(&f.title)?, "value": r(&f.value)?, "short": f.short.unwrap_or(c.short_fields)}),
            );
        }
        att.insert("fields".into(), Value::Array(fields));
    }
    let image = r(&c.image_url)?;
    if !image.is_empty() {
        att.insert("image_url".into(), Value::String(image));
    }
    let thumb = r(&c.thumb_url)?;
    if !thumb.is_empty() {
        att.insert("thumb_url".into(), Value::String(thumb));
    }
    att.insert("footer".into(), Value::String(r(&c.footer)?));
    let color = r(&c.color)?;
    if !color.is_empty() {
        att.insert("color".into(), Value::String(color));
    }
    att.insert("mrkdwn_in".into(), json!(mrkdwn_in));
    let mut req = serde_json::Map::new();
    for (k, v) in [
        ("channel", r(c.channel.as_deref().unwrap_or(""))?),
        ("username", r(&c.username)?),
        ("icon_emoji", r(&c.icon_emoji)?),
        ("icon_url", r(&c.icon_url)?),
    ] {
        if !v.is_empty() {
            req.insert(k.into(), Value::String(v));
        }
    }
    if c.link_names {
        req.insert("link_names".into(), Value::Bool(true));
    }
    req.insert("attachments".into(), Value::Array(vec![Value::Object(att)]));
    let http = c.http_config.clone().unwrap_or_default();
    let body = post(
        client,
        Request {
            integration: "slack",
            url: &url,
            content_type: "application/json",
            body: go_json(&Value::Object(req)),
            headers: Vec::new(),
            http: &http,
            timeout: None,
        },
    )
    .await?;
    // chat.postMessage answers 200 with {"ok": false, "error": …} when it refuses.
    if let Ok(v) = serde_json::from_str::<Value>(&body)
        && v.get("ok") == Some(&Value::Bool(false))
    {
        let e = v.get("error").and_then(Value::as_str).unwrap_or("unknown error");
        return Err(NotifyError { message: format!("slack: error response from Slack: {e}"), retry: false });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    #[serde(default = "teams_title")]
    pub title: String,
    #[serde(default = "teams_summary")]
    pub summary: String,
    #[serde(default = "teams_text")]
    pub text: String,
}

fn teams_title() -> String {
    r#"{{ template "msteams.default.title" . }}"#.into()
}
fn teams_summary() -> String {
    r#"{{ template "msteams.default.summary" . }}"#.into()
}
fn teams_text() -> String {
    r#"{{ template "msteams.default.text" . }}"#.into()
}

pub async fn send_msteams(
    c: &MsTeamsConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
) -> Result<(), NotifyError> {
    let r = |text: &str| render(t, text, data, "msteams");
    let url = secret(&c.webhook_url, &c.webhook_url_file, "msteams webhook_url")?;
    let color = if data.status == "firing" { "8C1A1A" } else { "2DC72D" };
    let card = json!({
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": r(&c.title)?,
        "summary": r(&c.summary)?,
        "text": r(&c.text)?,
        "themeColor": color,
    });
    let http = c.http_config.clone().unwrap_or_default();
    let req = Request {
        integration: "msteams",
        url: &url,
        content_type: "application/json",
        body: go_json(&card),
        headers: Vec::new(),
        http: &http,
        timeout: None,
    };
    post(client, req).await.map(|_| ())
}

// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    #[serde(default = "discord_title")]
    pub title: String,
    #[serde(default = "discord_message")]
    pub message: String,
}

fn discord_title() -> String {
    r#"{{ template "discord.default.title" . }}"#.into()
}
fn discord_message() -> String {
    r#"{{ template "discord.default.message" . }}"#.into()
}

pub async fn send_discord(
    c: &DiscordConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
) -> Result<(), NotifyError> {
    let r = |text: &str| render(t, text, data, "discord");
    let url = secret(&c.webhook_url, &c.webhook_url_file, "discord webhook_url")?;
    let color: u32 = if data.status == "firing" { 0x992D22 } else { 0x2ECC71 };
    let body = json!({
        "embeds": [{
            "title": truncate(r(&c.title)?, 256),
            "description": truncate(r(&c.message)?, 4096),
            "color": color,
        }]
    });
    let http = c.http_config.clone().unwrap_or_default();
    let req = Request {
        integration: "discord",
        url: &url,
        content_type: "application/json",
        body: go_json(&body),
        headers: Vec::new(),
        http: &http,
        timeout: None,
    };
    post(client, req).await.map(|_| ())
}

// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<String>,
    pub chat_id: i64,
    #[serde(default = "telegram_message")]
    pub message: String,
    #[serde(default)]
    pub disable_notifications: bool,
    #[serde(default = "telegram_parse_mode")]
    pub parse_mode: String,
}

fn telegram_message() -> String {
    r#"{{ template "telegram.default.message" . }}"#.into()
}
fn telegram_parse_mode() -> String {
    "HTML".into()
}

pub async fn send_telegram(
    c: &TelegramConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
    default_api_url: &str,
) -> Result<(), NotifyError> {
    let token = secret(&c.bot_token, &c.bot_token_file, "telegram bot_token")?;
    let api = c.api_url.as_deref().unwrap_or(default_api_url).trim_end_matches('/');
    let url = format!("{api}/bot{token}/sendMessage");
    let body = json!({
        "chat_id": c.chat_id,
        "text": truncate(render(t, &c.message, data, "telegram")?, 4096),
        "parse_mode": c.parse_mode,
        "disable_notification": c.disable_notifications,
    });
    let http = c.http_config.clone().unwrap_or_default();
    let req = Request {
        integration: "telegram",
        url: &url,
        content_type: "application/json",
        body: go_json(&body),
        headers: Vec::new(),
        http: &http,
        timeout: None,
    };
    post(client, req).await.map(|_| ())
}
