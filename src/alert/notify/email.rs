//! Email over SMTP (`lettre`): implicit TLS on port 465, otherwise STARTTLS when the server
//! offers it (required unless `require_tls: false`), PLAIN/LOGIN authentication, and a
//! multipart body with the HTML and text templates, as Alertmanager sends it.

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::chat::render;
use super::template::Templates;
use super::{NotifyData, NotifyError};
use crate::config::TlsConfig;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub send_resolved: bool,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_identity: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "email_html")]
    pub html: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
}

fn email_html() -> String {
    r#"{{ template "email.default.html" . }}"#.into()
}

/// The settings after `global` filled in what the entry left out.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailTarget {
    pub config: EmailConfig,
    pub from: String,
    pub hello: String,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub require_tls: bool,
}

fn fail(message: String) -> NotifyError {
    NotifyError { message: format!("email: {message}"), retry: false }
}

/// Headers are templated; `To`, `From` and `Subject` default to the entry and the
/// default subject template.
fn headers(t: &EmailTarget, tpl: &Templates, data: &NotifyData) -> Result<BTreeMap<String, String>, NotifyError> {
    let mut h: BTreeMap<String, String> = BTreeMap::new();
    h.insert("Subject".into(), r#"{{ template "email.default.subject" . }}"#.into());
    h.insert("To".into(), t.config.to.clone());
    h.insert("From".into(), t.from.clone());
    for (k, v) in &t.config.headers {
        // Header names are case-insensitive; the entry's spelling wins.
        h.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
        h.insert(k.clone(), v.clone());
    }
    let mut out = BTreeMap::new();
    for (k, v) in h {
        out.insert(k, render(tpl, &v, data, "email")?);
    }
    Ok(out)
}

fn get<'a>(h: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
}

pub async fn send_email(t: &EmailTarget, tpl: &Templates, data: &NotifyData) -> Result<(), NotifyError> {
    let h = headers(t, tpl, data)?;
    let parse =
        |what: &str, v: &str| v.parse::<Mailbox>().map_err(|e| fail(format!("parsing {what} address {v:?}: {e}")));
    let mut msg = Message::builder().from(parse("from", get(&h, "From"))?).subject(get(&h, "Subject"));
    for to in get(&h, "To").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        msg = msg.to(parse("to", to)?);
    }
    let html = tpl
        .render_html(&t.config.html, data)
        .map_err(|e| NotifyError { message: format!("email: template: {e}"), retry: false })?;
    let text = render(tpl, &t.config.text, data, "email")?;
    let body = match (text.is_empty(), html.is_empty()) {
        (false, false) => MultiPart::alternative()
            .singlepart(SinglePart::builder().header(header::ContentType::TEXT_PLAIN).body(text))
            .singlepart(SinglePart::builder().header(header::ContentType::TEXT_HTML).body(html)),
        (false, true) => {
            MultiPart::mixed().singlepart(SinglePart::builder().header(header::ContentType::TEXT_PLAIN).body(text))
        }
        _ => {
            MultiPart::alternative().singlepart(SinglePart::builder().header(header::ContentType::TEXT_HTML).body(html))
        }
    };
    let message = msg.multipart(body).map_err(|e| fail(format!("building the message: {e}")))?;

    let mut tls_params = TlsParameters::builder(t.host.clone());
    if let Some(tls) = &t.config.tls_config {
        if tls.insecure_skip_verify == Some(true) {
            tls_params = tls_params.dangerous_accept_invalid_certs(true);
        }
        if let Some(name) = &tls.server_name {
            tls_params = TlsParameters::builder(name.clone())
                .dangerous_accept_invalid_certs(tls.insecure_skip_verify == Some(true));
        }
    }
    let params = tls_params.build().map_err(|e| fail(format!("TLS settings: {e}")))?;
    let tls = if t.port == 465 {
        Tls::Wrapper(params)
    } else if t.require_tls {
        Tls::Required(params)
    } else {
        Tls::Opportunistic(params)
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.host.clone())
        .port(t.port)
        .tls(tls)
        .hello_name(ClientId::Domain(t.hello.clone()))
        .timeout(Some(Duration::from_secs(30)));
    if let Some(user) = &t.username {
        b = b
            .credentials(Credentials::new(user.clone(), t.password.clone().unwrap_or_default()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let transport = b.build();
    transport.send(message).await.map(|_| ()).map_err(|e| NotifyError {
        message: format!("email: sending to {}:{}: {e}", t.host, t.port),
        // A refused message (5xx) is final; connection trouble and 4xx are worth a retry.
        retry: !e.is_permanent(),
    })
}
