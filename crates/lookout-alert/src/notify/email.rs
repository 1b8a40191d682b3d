//! E-mail over SMTP (lettre, rustls): STARTTLS required by default, implicit TLS, or plain
//! for a loopback relay. One plain-text message per transition.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alert::Transition;
use crate::config::{EmailConfig, SmtpSecurity};

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    pub fn new(cfg: &EmailConfig) -> Result<Self, String> {
        let bad = |field: &str, e: &dyn std::fmt::Display| format!("[alerts.email] {field}: {e}");
        let from: Mailbox = cfg.from.parse().map_err(|e| bad("from", &e))?;
        if cfg.to.is_empty() {
            return Err(bad("to", &"at least one address"));
        }
        let to = cfg
            .to
            .iter()
            .map(|a| a.parse::<Mailbox>().map_err(|e| bad("to", &e)))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(cfg.smtp_host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path).map_err(|e| bad("ca_file", &e))?;
                b = b.add_root_certificate(
                    Certificate::from_pem(&pem).map_err(|e| bad("ca_file", &e))?,
                );
            }
            b.build_rustls().map_err(|e| bad("tls", &e))
        };
        let security = match cfg.security {
            SmtpSecurity::Starttls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            .port(cfg.smtp_port)
            .tls(security)
            .timeout(Some(Duration::from_secs(10)));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Self {
            transport: b.build(),
            from,
            to,
        })
    }

    pub async fn send(&self, t: &Transition) -> Result<(), String> {
        let subject = super::body::headline(t);
        let mut text = format!("{subject}\n\n");
        for (k, v) in &t.alert.labels {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&format!(
            "\nvalue: {}\n",
            crate::template::format_value(t.alert.value)
        ));
        let mut m = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            m = m.to(to.clone());
        }
        let msg = m
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| super::chain(&e))
    }
}
