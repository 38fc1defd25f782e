//! Message templates: a minijinja environment over `{dir}/{locale}/{name}.{part}` files, locale
//! fallback, and the context every message is rendered with.
//!
//! # Layout on disk
//!
//! ```text
//! templates/
//!   es/courtesy.subject.txt   email subject (one line; extra lines are joined)
//!   es/courtesy.txt           plain-text body: email text part, SMS, WhatsApp, webhook
//!   es/courtesy.html          email HTML part (HTML autoescape on)
//!   es/courtesy.short.txt     optional short text for SMS and WhatsApp (else `.txt` is used)
//!   es-CO/courtesy.txt        optional regional override of the whole template
//!   en/...
//! ```
//!
//! A template *exists* in a locale when its `.txt` file does. Files whose name starts with `_`
//! (`es/_footer.html`) are partials: loaded so templates can `{% include "es/_footer.html" %}`
//! them, but not templates of their own. Undefined variables are errors, never empty strings;
//! optional values that are unset (`company.website`, `invoice.payment_url`) are `none`, test
//! them with `{% if %}`, and print as nothing.
//!
//! Locale fallback for `es-CO`: `es-CO` → `es` → the default locale → the default's language.
//! A language with no folder of its own falls to its first regional folder: a client whose
//! locale is `pt` gets `pt-BR`.

pub mod context;
pub mod format;
pub mod line_breaks;
pub mod whatsapp;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

pub use context::{StepInfo, message_context};
pub use format::{format_date, format_money};

use crate::policy::Company;

/// One file of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// `{name}.subject.txt`: the email subject.
    Subject,
    /// `{name}.txt`: the plain-text body.
    Text,
    /// `{name}.html`: the email HTML body.
    Html,
    /// `{name}.short.txt`: an optional short text for SMS and WhatsApp.
    Short,
}

impl Part {
    /// Every part, in file-name order of precedence (longer suffixes first).
    pub const ALL: [Part; 4] = [Part::Subject, Part::Short, Part::Text, Part::Html];

    /// The file-name suffix of this part (`.subject.txt`, `.txt`, `.html`).
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Subject => ".subject.txt",
            Part::Short => ".short.txt",
            Part::Text => ".txt",
            Part::Html => ".html",
        }
    }

    /// The parts a message for channel `kind` needs: all three for `email`, the text otherwise.
    pub fn required_for(kind: &str) -> &'static [Part] {
        if kind == "email" {
            &[Part::Subject, Part::Text, Part::Html]
        } else {
            &[Part::Text]
        }
    }

    /// Splits a file name into template name and part (`courtesy.subject.txt` → `courtesy`).
    fn split(file_name: &str) -> Option<(&str, Part)> {
        Part::ALL.iter().find_map(|p| {
            file_name
                .strip_suffix(p.suffix())
                .filter(|n| !n.is_empty())
                .map(|n| (n, *p))
        })
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Subject => "subject",
            Part::Short => "short text",
            Part::Text => "text",
            Part::Html => "html",
        })
    }
}

/// Which files a template has in one locale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateParts {
    /// `{name}.subject.txt` exists.
    pub subject: bool,
    /// `{name}.txt` exists.
    pub text: bool,
    /// `{name}.html` exists.
    pub html: bool,
    /// `{name}.short.txt` exists.
    pub short: bool,
}

impl TemplateParts {
    /// Whether `part` exists.
    pub fn has(&self, part: Part) -> bool {
        match part {
            Part::Subject => self.subject,
            Part::Short => self.short,
            Part::Text => self.text,
            Part::Html => self.html,
        }
    }

    fn set(&mut self, part: Part) {
        match part {
            Part::Subject => self.subject = true,
            Part::Short => self.short = true,
            Part::Text => self.text = true,
            Part::Html => self.html = true,
        }
    }
}

/// Why templates could not be loaded or rendered. `Display` is the full message.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The templates directory is missing.
    #[error(
        "templates directory {} does not exist or is not a directory; create it with one folder per locale (es, en, es-CO) holding NAME.subject.txt, NAME.txt and NAME.html",
        path.display()
    )]
    MissingDir {
        /// The directory looked for.
        path: PathBuf,
    },
    /// A file or directory could not be read (or was not UTF-8).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("{}: {message}", at(path, *line))]
    Syntax {
        /// The template file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// No locale in the fallback chain has the template.
    #[error(
        "no template {name:?} for locale {locale:?}: none of {} exists{}",
        list_paths(tried),
        known_names(available)
    )]
    NotFound {
        /// Template name.
        name: String,
        /// Locale asked for.
        locale: String,
        /// The `.txt` files looked for, in fallback order.
        tried: Vec<PathBuf>,
        /// Template names that do exist in those locales.
        available: Vec<String>,
    },
    /// The template exists but lacks a file the channel needs.
    #[error(
        "{} is missing: {kind} messages need {needs}",
        path.display(),
        needs = needs_for(kind)
    )]
    MissingPart {
        /// Template name.
        name: String,
        /// Locale directory the template was found in.
        locale: String,
        /// The channel kind.
        kind: String,
        /// The missing part.
        part: Part,
        /// The file that should exist.
        path: PathBuf,
    },
    /// Rendering failed (undefined variable, bad filter call, ...).
    #[error("{}{}: {message}", at(path, *line), column.map(|c| format!(":{c}")).unwrap_or_default())]
    Render {
        /// The template file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the offending expression, when known.
        column: Option<usize>,
        /// What went wrong and how to fix it.
        message: String,
    },
}

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn known_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; templates available: {}", names.join(", "))
    }
}

fn needs_for(kind: &str) -> &'static str {
    if kind == "email" {
        "NAME.subject.txt, NAME.txt and NAME.html"
    } else {
        "NAME.txt"
    }
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The locale directory the template came from (after fallback), e.g. `es`.
    pub locale: String,
    /// Subject, on one line (email only).
    pub subject: Option<String>,
    /// Plain-text body.
    pub text: String,
    /// HTML body (email only).
    pub html: Option<String>,
}

/// Templates of one locale directory.
#[derive(Debug)]
struct LocaleDir {
    /// Directory name as on disk (`es-CO`).
    dir_name: String,
    /// Template name → parts present.
    templates: BTreeMap<String, TemplateParts>,
}

struct Inner {
    env: Environment<'static>,
    dir: PathBuf,
    default_locale: String,
    /// Normalised locale (`es-co`) → its directory.
    locales: BTreeMap<String, LocaleDir>,
}

/// All message templates, loaded and compiled once. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    inner: Arc<Inner>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.inner.dir)
            .field("default_locale", &self.inner.default_locale)
            .field("locales", &self.inner.locales)
            .finish()
    }
}

/// Lowercase with `-` separators: `es_CO` → `es-co`.
fn normalize_locale(locale: &str) -> String {
    locale.trim().replace('_', "-").to_ascii_lowercase()
}

fn language_of(normalized: &str) -> &str {
    normalized.split('-').next().unwrap_or(normalized)
}

fn read_dir_sorted(path: &Path) -> Result<Vec<std::fs::DirEntry>, TemplateError> {
    let read_err = |source| TemplateError::Read {
        path: path.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        entries.push(entry.map_err(read_err)?);
    }
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

impl Templates {
    /// Loads and compiles every template under `dir` (one subdirectory per locale).
    ///
    /// `default_locale` is the last step of the locale fallback. Compile errors name the file and
    /// line.
    pub fn load(dir: &Path, default_locale: &str) -> Result<Templates, TemplateError> {
        if !dir.is_dir() {
            return Err(TemplateError::MissingDir {
                path: dir.to_owned(),
            });
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // An unset optional value (`company.website`) prints as nothing, never as "none".
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        if let Ok(syntax) = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }

        let mut locales = BTreeMap::new();
        for entry in read_dir_sorted(dir)? {
            let Some(dir_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if dir_name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let mut templates: BTreeMap<String, TemplateParts> = BTreeMap::new();
            for file in read_dir_sorted(&entry.path())? {
                let path = file.path();
                let Some(file_name) = file.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Some((name, part)) = Part::split(&file_name) else {
                    continue;
                };
                if file_name.starts_with('.') || !path.is_file() {
                    continue;
                }
                let source =
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.clone(),
                        source,
                    })?;
                env.add_template_owned(format!("{dir_name}/{file_name}"), source)
                    .map_err(|e| TemplateError::Syntax {
                        path: path.clone(),
                        line: e.line(),
                        message: describe_error(&e, None),
                    })?;
                if !name.starts_with('_') {
                    templates.entry(name.to_owned()).or_default().set(part);
                }
            }
            locales.insert(
                normalize_locale(&dir_name),
                LocaleDir {
                    dir_name,
                    templates,
                },
            );
        }
        Ok(Templates {
            inner: Arc::new(Inner {
                env,
                dir: dir.to_owned(),
                default_locale: default_locale.to_owned(),
                locales,
            }),
        })
    }

    /// The templates directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The default locale (last fallback).
    pub fn default_locale(&self) -> &str {
        &self.inner.default_locale
    }

    /// Locale directories found, as named on disk.
    pub fn locales(&self) -> Vec<String> {
        self.inner
            .locales
            .values()
            .map(|l| l.dir_name.clone())
            .collect()
    }

    /// Template names found in any locale.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .locales
            .values()
            .flat_map(|l| l.templates.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Locales to try for `locale`, in order: itself, its language, the default locale, the
    /// default's language. Each as (normalised key, name as written).
    fn chain(&self, locale: &str) -> Vec<(String, String)> {
        let written = |l: &str| l.trim().replace('_', "-");
        let asked = written(locale);
        let default = written(&self.inner.default_locale);
        let mut chain: Vec<(String, String)> = Vec::with_capacity(4);
        // A language asked without a region, with no folder of its own, takes the first
        // regional folder of that language (`pt` → `pt-BR`).
        let regional = |lang: String| -> String {
            let key = normalize_locale(&lang);
            if self.inner.locales.contains_key(&key) {
                return lang;
            }
            let prefix = format!("{key}-");
            self.inner
                .locales
                .iter()
                .find(|(k, _)| k.starts_with(&prefix))
                .map_or(lang, |(_, d)| d.dir_name.clone())
        };
        for candidate in [
            asked.clone(),
            regional(language_of(&asked).to_ascii_lowercase()),
            default.clone(),
            regional(language_of(&default).to_ascii_lowercase()),
        ] {
            let key = normalize_locale(&candidate);
            if !key.is_empty() && !chain.iter().any(|(k, _)| *k == key) {
                chain.push((key, candidate));
            }
        }
        chain
    }

    /// The locale directory (as named on disk) whose `name` template serves `locale`, following
    /// the fallback chain; `None` when no locale in the chain has `{name}.txt`.
    pub fn resolve_locale(&self, name: &str, locale: &str) -> Option<String> {
        self.chain(locale).into_iter().find_map(|(l, _)| {
            let dir = self.inner.locales.get(&l)?;
            dir.templates
                .get(name)
                .filter(|p| p.text)
                .map(|_| dir.dir_name.clone())
        })
    }

    /// Which parts template `name` has in locale directory `locale` (no fallback).
    pub fn parts(&self, name: &str, locale: &str) -> Option<TemplateParts> {
        self.inner
            .locales
            .get(&normalize_locale(locale))?
            .templates
            .get(name)
            .copied()
    }

    /// Checks that `name` resolves for `locale` and has every part channel `kind` needs;
    /// returns the locale directory used.
    pub fn require(&self, name: &str, locale: &str, kind: &str) -> Result<String, TemplateError> {
        let Some(found) = self.resolve_locale(name, locale) else {
            let chain = self.chain(locale);
            let tried = chain
                .iter()
                .map(|(l, written)| {
                    let dir_name = self
                        .inner
                        .locales
                        .get(l)
                        .map_or(written.as_str(), |d| d.dir_name.as_str());
                    self.inner.dir.join(dir_name).join(format!("{name}.txt"))
                })
                .collect();
            let mut available: Vec<String> = chain
                .iter()
                .filter_map(|(l, _)| self.inner.locales.get(l))
                .flat_map(|d| {
                    d.templates
                        .iter()
                        .filter(|(_, p)| p.text)
                        .map(|(n, _)| n.clone())
                })
                .collect();
            available.sort();
            available.dedup();
            return Err(TemplateError::NotFound {
                name: name.to_owned(),
                locale: locale.to_owned(),
                tried,
                available,
            });
        };
        let parts = self.parts(name, &found).unwrap_or_default();
        if let Some(part) = Part::required_for(kind).iter().find(|p| !parts.has(**p)) {
            return Err(TemplateError::MissingPart {
                name: name.to_owned(),
                locale: found.clone(),
                kind: kind.to_owned(),
                part: *part,
                path: self.path_of(&found, name, *part),
            });
        }
        Ok(found)
    }

    fn path_of(&self, locale_dir: &str, name: &str, part: Part) -> PathBuf {
        self.inner
            .dir
            .join(locale_dir)
            .join(format!("{name}{}", part.suffix()))
    }

    fn render_part(
        &self,
        locale_dir: &str,
        name: &str,
        part: Part,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let key = format!("{locale_dir}/{name}{}", part.suffix());
        let path = self.path_of(locale_dir, name, part);
        let template = self
            .inner
            .env
            .get_template(&key)
            .map_err(|e| TemplateError::Render {
                path: path.clone(),
                line: None,
                column: None,
                message: describe_error(&e, None),
            })?;
        template.render(ctx).map_err(|e| {
            // The error may come from an included partial: name that file, not the caller.
            let (path, source) = match e.name().filter(|n| *n != key) {
                Some(other) => (
                    self.inner.dir.join(other),
                    self.inner
                        .env
                        .get_template(other)
                        .ok()
                        .map(|t| t.source().to_owned()),
                ),
                None => (path, Some(template.source().to_owned())),
            };
            TemplateError::Render {
                path,
                line: e.line(),
                column: source
                    .as_deref()
                    .zip(e.range())
                    .map(|(s, r)| crate::config::line_col(s, r.start).1),
                message: describe_error(&e, source.as_deref()),
            }
        })
    }

    /// Renders template `name` for `locale` (with fallback) for channel `kind` (`email` renders
    /// subject, text and HTML; other kinds only the text).
    pub fn render(
        &self,
        name: &str,
        locale: &str,
        kind: &str,
        ctx: &Value,
    ) -> Result<Rendered, TemplateError> {
        let found = self.require(name, locale, kind)?;
        let short =
            matches!(kind, "sms" | "whatsapp") && self.parts(name, &found).is_some_and(|p| p.short);
        let text_part = if short { Part::Short } else { Part::Text };
        let text = self.render_part(&found, name, text_part, ctx)?;
        let (subject, html) = if kind == "email" {
            let subject = self.render_part(&found, name, Part::Subject, ctx)?;
            let html = self.render_part(&found, name, Part::Html, ctx)?;
            (Some(one_line(&subject)), Some(html))
        } else {
            (None, None)
        };
        Ok(Rendered {
            locale: found,
            subject,
            text,
            html,
        })
    }

    /// Renders every part of every template in every locale with sample contexts (an invoice
    /// before its due date without a payment link, and one overdue with a link), returning every
    /// problem found; empty when all is well. For `plazo check`.
    pub fn check_all(&self, company: &Company) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        for dir in self.inner.locales.values() {
            for (name, parts) in &dir.templates {
                if !parts.text {
                    errors.push(TemplateError::MissingPart {
                        name: name.clone(),
                        locale: dir.dir_name.clone(),
                        kind: "every".to_owned(),
                        part: Part::Text,
                        path: self.path_of(&dir.dir_name, name, Part::Text),
                    });
                }
                for part in Part::ALL.into_iter().filter(|p| parts.has(*p)) {
                    for ctx in context::sample_contexts(company, &dir.dir_name) {
                        if let Err(e) = self.render_part(&dir.dir_name, name, part, &ctx) {
                            errors.push(e);
                            break;
                        }
                    }
                }
            }
        }
        errors
    }
}

impl Templates {
    /// The text an SMS of template `name` would carry (`.short.txt`, else `.txt`) rendered
    /// with the sample contexts of [`Templates::check_all`], for every locale that has it:
    /// `(locale folder, text)`. For `plazo check`'s SMS length warnings.
    pub fn sample_texts(&self, name: &str, company: &Company) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for dir in self.inner.locales.values() {
            let Some(parts) = dir.templates.get(name).filter(|p| p.text) else {
                continue;
            };
            let part = if parts.short { Part::Short } else { Part::Text };
            for ctx in context::sample_contexts(company, &dir.dir_name) {
                if let Ok(text) = self.render_part(&dir.dir_name, name, part, &ctx) {
                    out.push((dir.dir_name.clone(), text));
                }
            }
        }
        out
    }
}

/// Collapses a rendered subject onto one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-line explanation of a minijinja error, quoting the offending expression when the
/// template source is known.
fn describe_error(e: &minijinja::Error, source: Option<&str>) -> String {
    let mut msg = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(snippet) = source.zip(e.range()).and_then(|(s, r)| s.get(r)) {
        msg.push_str(&format!(" in `{}`", snippet.trim()));
    }
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        msg.push_str(
            "; available: client.{id, name, first_name, email, phone, open_invoices, \
             open_invoices_more, open_total}, invoice.{id, number, currency, amount, balance, \
             amount_raw, balance_raw, due_date, due_date_iso, days_until_due, days_overdue, \
             is_overdue, payment_url, metadata, discount, charges}, arrangement, \
             company.{name, email, phone, website}, step.{name, tone, index}, locale",
        );
    }
    msg
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shipped_tests;
