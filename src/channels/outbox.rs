//! The outbox: writes each message to a file instead of sending it.
//!
//! Email (`kind = "email"`) becomes `{reminder_id}-email.eml`, built by
//! [`build_message`] exactly as the SMTP adapter would send it;
//! any other kind becomes `{reminder_id}-{kind}.json` (the [`Outbound`] as JSON). Files are
//! written to a temporary name, synced, then renamed into place, so a reader never sees half a
//! file, and a retry of the same reminder replaces the file instead of adding another.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use serde::Deserialize;

use super::build::{BuildContext, ChannelBuildError, resolve};
use super::channel::{Channel, ChannelError, Outbound, Receipt};
use super::email::{MessageSettings, build_message, message_settings};

/// Default outbox directory, relative to the data directory.
pub const DEFAULT_DIR: &str = "outbox";
/// Default sender of `.eml` files when the config gives none.
pub const DEFAULT_FROM: &str = "plazo <plazo@localhost>";

/// `type = "outbox"`: write messages to files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Directory to write to; relative paths are under the data directory. Default `outbox`.
    /// Email messages become `{reminder_id}-{kind}.eml` (exactly what SMTP would send), other
    /// kinds `{reminder_id}-{kind}.json`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `From` of the `.eml` files, e.g. `"Cartera <cartera@example.co>"`. Default
    /// `"plazo <plazo@localhost>"`; set it to the SMTP channel's `from` to preview real mail.
    #[serde(default)]
    pub from: Option<String>,
    /// `Reply-To` of the `.eml` files. Default: none.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Domain of the `Message-ID` of the `.eml` files. Default: the domain of `from`.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// Extra `mailto:` address added to `List-Unsubscribe`, e.g. `unsubscribe@example.co`.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
}

/// The outbox channel.
#[derive(Debug)]
pub struct OutboxChannel {
    name: String,
    dir: PathBuf,
    settings: MessageSettings,
}

impl OutboxChannel {
    /// Builds the channel and creates its directory.
    pub fn from_config(
        name: &str,
        cfg: &OutboxConfig,
        ctx: &BuildContext,
    ) -> Result<Self, ChannelBuildError> {
        let dir = resolve(
            &ctx.data_dir,
            cfg.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR)),
        );
        std::fs::create_dir_all(&dir).map_err(|e| {
            ChannelBuildError::invalid(
                name,
                "dir",
                format!(
                    "cannot create {} ({e}); choose a writable directory",
                    dir.display()
                ),
            )
        })?;
        let settings = message_settings(
            name,
            cfg.from.as_deref().unwrap_or(DEFAULT_FROM),
            cfg.reply_to.as_deref(),
            cfg.message_id_domain.as_deref(),
            cfg.unsubscribe_mailto.as_deref(),
        )?;
        Ok(OutboxChannel {
            name: name.to_owned(),
            dir,
            settings,
        })
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name and content for `msg`.
    fn render(&self, msg: &Outbound) -> Result<(String, Vec<u8>), ChannelError> {
        // `kind` comes from policy; keep the file name safe whatever it holds.
        let kind: String = msg
            .kind
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if msg.kind == "email" {
            let m = build_message(&self.settings, msg)?;
            Ok((format!("{}-{kind}.eml", msg.reminder_id), m.formatted()))
        } else {
            let mut body = serde_json::to_vec_pretty(msg)
                .map_err(|e| ChannelError::permanent(format!("cannot serialise message: {e}")))?;
            body.push(b'\n');
            Ok((format!("{}-{kind}.json", msg.reminder_id), body))
        }
    }
}

/// Writes `bytes` to `dir/name` atomically (temp file, fsync, rename).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Channel for OutboxChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "outbox"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move {
            let (file, bytes) = self.render(msg)?;
            let dir = self.dir.clone();
            let name = file.clone();
            tokio::task::spawn_blocking(move || write_atomic(&dir, &name, &bytes))
                .await
                .map_err(|e| ChannelError::transient(format!("outbox write task failed: {e}")))?
                .map_err(|e| {
                    ChannelError::transient(format!(
                        "outbox: cannot write {}: {e}",
                        self.dir.join(&file).display()
                    ))
                })?;
            Ok(Receipt {
                provider_message_id: Some(file),
                note: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::config::ChannelConfig;
    use crate::channels::testutil::{ctx, email, header};

    #[tokio::test]
    async fn writes_eml_and_json_files_atomically() {
        let data = tempfile::tempdir().unwrap();
        let cfg: ChannelConfig =
            toml::from_str("type = \"outbox\"\nfrom = \"Cartera <cartera@example.co>\"\n").unwrap();
        let ch = cfg.build("dry-run", &ctx(data.path(), &[])).unwrap();
        assert_eq!((ch.name(), ch.adapter()), ("dry-run", "outbox"));
        let dir = data.path().join("outbox");

        let msg = email("ana@cliente.example", 1);
        let r = ch.send(&msg).await.unwrap();
        let eml_name = format!("{}-email.eml", msg.reminder_id);
        assert_eq!(r.provider_message_id.as_deref(), Some(eml_name.as_str()));
        let raw = std::fs::read_to_string(dir.join(&eml_name)).unwrap();
        assert!(
            header(&raw, "Content-Type")
                .unwrap()
                .starts_with("multipart/alternative;")
        );
        let boundary = header(&raw, "Content-Type")
            .unwrap()
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        let parts: Vec<&str> = raw.split(&format!("--{boundary}")).collect();
        assert_eq!(parts.len(), 4, "preamble, text, html, epilogue");
        assert!(parts[1].contains("Content-Type: text/plain; charset=utf-8"));
        assert!(parts[2].contains("Content-Type: text/html; charset=utf-8"));
        assert_eq!(parts[3].trim(), "--");
        assert_eq!(
            header(&raw, "Message-ID").unwrap(),
            format!("<{}@example.co>", msg.reminder_id)
        );
        assert!(header(&raw, "List-Unsubscribe").is_some());

        let mut sms = email("+573001234567", 2);
        sms.kind = "sms".to_owned();
        sms.subject = None;
        sms.html = None;
        let r = ch.send(&sms).await.unwrap();
        let json_name = format!("{}-sms.json", sms.reminder_id);
        assert_eq!(r.provider_message_id.as_deref(), Some(json_name.as_str()));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&json_name)).unwrap()).unwrap();
        assert_eq!(v["reminder_id"], sms.reminder_id.to_string());
        assert_eq!(v["to"], "+573001234567");
        assert_eq!(v["kind"], "sms");
        assert!(v.get("subject").is_none());

        // A retry replaces the file; no temp files are left behind.
        ch.send(&sms).await.unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut expected = vec![eml_name, json_name];
        expected.sort();
        assert_eq!(names, expected);
    }

    #[tokio::test]
    async fn custom_dir_and_bad_email_is_permanent() {
        let data = tempfile::tempdir().unwrap();
        let abs = data.path().join("elsewhere/out");
        let cfg = OutboxConfig {
            dir: Some(abs.clone()),
            ..OutboxConfig::default()
        };
        let ch = OutboxChannel::from_config("o", &cfg, &ctx(data.path(), &[])).unwrap();
        assert_eq!(ch.dir(), abs.as_path());
        let err = ch.send(&email("nope", 1)).await.unwrap_err();
        assert!(err.is_permanent(), "{err}");
        let mut odd = email("+57300", 1);
        odd.kind = "../x".to_owned();
        let r = ch.send(&odd).await.unwrap();
        assert_eq!(
            r.provider_message_id.unwrap(),
            format!("{}-___x.json", odd.reminder_id)
        );
    }
}
