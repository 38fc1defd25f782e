//! The policy file as ops write it (`config/policy.toml`). These structs mirror the TOML one to
//! one; every field's doc comment is its user documentation. [`super::load`] checks them and turns
//! them into [`super::model`] types.
//!
//! Unknown keys are rejected, so a typo (`ofset`) is an error rather than a silently ignored line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Folder holding the message templates, relative to the policy file; `templates` when
    /// omitted. It holds one folder per locale (`es`, `en`, `es-CO`) with `NAME.subject.txt`,
    /// `NAME.txt` and `NAME.html` files.
    #[serde(default)]
    pub templates_dir: Option<Spanned<String>>,
    /// Segment used for clients that name none (or name one that does not exist). Must be one
    /// of the `[segments.*]` tables. Write it at the top of the file, before any table.
    pub default_segment: Spanned<String>,
    /// Values used when a client or segment does not say otherwise.
    pub defaults: DefaultsFile,
    /// The creditor: shown in every message as `company.*`.
    pub company: CompanyFile,
    /// Client segments by name (`[segments.late_payers]`); each picks a cadence.
    #[serde(default)]
    pub segments: BTreeMap<String, SegmentFile>,
    /// Cadences by name (`[[cadences.standard.steps]]`): the reminders sent around a due date.
    #[serde(default)]
    pub cadences: BTreeMap<String, CadenceFile>,
    /// Settings per channel kind: `[channels.sms]`, `[channels.whatsapp]`.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelSettingsFile>,
    /// Opt-out keywords for SMS and WhatsApp replies.
    #[serde(default)]
    pub opt_out: Option<OptOutFile>,
    /// Payment link, early-payment discount and (informational) late charges.
    #[serde(default)]
    pub payments: Option<PaymentsFile>,
    /// Promises to pay (`POST /v1/invoices/{id}/promises`): their reminders, grace period and
    /// what happens when one is broken.
    #[serde(default)]
    pub promises: Option<PromisesFile>,
    /// Payment plans (`POST /v1/invoices/{id}/plans`): instalment reminders and grace period.
    #[serde(default)]
    pub plans: Option<PlansFile>,
    /// How client facts (`GET /v1/clients/{id}` → `facts`, and segment rules) are computed.
    #[serde(default)]
    pub facts: Option<FactsFile>,
    /// Partners invoices can be handed to, by name (`[partners.cobranzas_norte]`).
    #[serde(default)]
    pub partners: BTreeMap<String, PartnerFile>,
    /// When an unpaid invoice is written off by age (`[write_off] after_days = 360`).
    #[serde(default)]
    pub write_off: Option<WriteOffFile>,
    /// Call tasks (`GET /v1/tasks`): queue order, claim timeout, retries after no answer.
    #[serde(default)]
    pub tasks: Option<TasksFile>,
    /// Inbound SMS and WhatsApp replies that pause the chase or open a task for a person.
    #[serde(default)]
    pub inbound: Option<InboundFile>,
    /// Contact rules by jurisdiction: which legal presets apply (hours, public holidays,
    /// contact caps), the operator's own presets and holiday overrides.
    #[serde(default)]
    pub compliance: Option<ComplianceFile>,
}

/// `[compliance]`: the contact law of each debtor's country. A preset is one jurisdiction's
/// rules as data: local hours per weekday, whether public holidays are closed, and contact
/// caps. The hours applied to a client are the intersection of the policy's window, its
/// segment's and every preset that applies; caps take the strictest. A reminder held back
/// waits for the next allowed moment (the timeline says why); it is never dropped, and never
/// sent outside. Built-in presets: `co_ley_2300`, `mx_condusef`, `us_reg_f`, `es_default`,
/// `br_cdc` (with `br_sp`, `br_al`, `br_rj`, `br_es`, `br_ce`), `cl_ley_21320`,
/// `pe_codigo_consumidor`, `ar_default` (`config/compliance/presets.toml`). Not legal advice:
/// have a lawyer approve the presets you rely on. Without this table no preset applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceFile {
    /// `"by_country"`: every preset whose `country` (and `subdivisions`, if it lists any) is
    /// the client's applies to it; `"off"`: only the presets in `always`.
    pub apply: Spanned<String>,
    /// Presets applied to every client whatever its country, e.g. `["co_ley_2300"]`.
    #[serde(default)]
    pub always: Vec<Spanned<String>>,
    /// Country (ISO 3166-1 alpha-2, `"CO"`) assumed for clients stored without one.
    #[serde(default)]
    pub default_country: Option<Spanned<String>>,
    /// A TOML file of holiday changes (`[[add]]` municipal or newly decreed days, `[[remove]]`
    /// moved ones), relative to this policy file. See `config/holidays/README.md`.
    #[serde(default)]
    pub holidays_override: Option<Spanned<String>>,
    /// Own presets by name, or built-in ones replaced (`[compliance.presets.co_ley_2300]`);
    /// same keys as the built-in file.
    #[serde(default)]
    pub presets: BTreeMap<String, PresetFile>,
}

/// One preset (`[compliance.presets.NAME]`, or a table of the built-in presets file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetFile {
    /// ISO 3166-1 alpha-2 code of the clients it applies to, e.g. `"CO"`.
    pub country: Spanned<String>,
    /// Only clients in these subdivisions (ISO 3166-2 suffixes, `["SP"]`); all when omitted.
    #[serde(default)]
    pub subdivisions: Vec<Spanned<String>>,
    /// A title for people.
    #[serde(default)]
    pub title: Option<String>,
    /// Local hours allowed, as windows (`{ days = "sat", from = "08:00", to = "15:00" }`);
    /// several windows add up. Any hour when omitted.
    #[serde(default)]
    pub windows: Vec<WindowFile>,
    /// Whether the client's national (and subdivision) public holidays are closed days.
    /// Default `false`.
    #[serde(default)]
    pub exclude_holidays: Option<Spanned<bool>>,
    /// Contact limits per client or per invoice.
    #[serde(default)]
    pub caps: Vec<CapFile>,
    /// Where the rule comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// How sure the reading is: `"primary"`, `"secondary"` or `"unverified"`.
    #[serde(default)]
    pub confidence: Option<String>,
}

/// One contact limit of a preset: `per` a period and exactly one of `max`, `min_gap_days`,
/// `distinct_channels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapFile {
    /// Channel kinds it counts and limits (`["call"]`, `["email", "sms"]`); all when omitted.
    #[serde(default)]
    pub channels: Option<Vec<Spanned<String>>>,
    /// `"person"` (default: every invoice of the client) or `"debt"` (one invoice).
    #[serde(default)]
    pub scope: Option<Spanned<String>>,
    /// `"day"` (local calendar day), `"rolling_7d"` or `"calendar_week"` (Monday to Sunday).
    pub per: Spanned<String>,
    /// At most this many contacts in the period (1 to 100).
    #[serde(default)]
    pub max: Option<Spanned<i64>>,
    /// At least this many days between two contacts (1 to 30).
    #[serde(default)]
    pub min_gap_days: Option<Spanned<i64>>,
    /// Once a contact got through in the period, at most this many distinct channels (1 to 5).
    #[serde(default)]
    pub distinct_channels: Option<Spanned<i64>>,
    /// `"attempt"` (default: every message sent, every call made) or `"effective"` (messages
    /// delivered, replies, calls that reached the debtor).
    #[serde(default)]
    pub count: Option<Spanned<String>>,
}

/// `[write_off]`: the age at which an unpaid invoice is written off (the *cartera castigada*).
/// The daily pass (`[housekeeping] resegment` in plazo.toml) writes off every invoice that is
/// open or handed off, has a balance, is neither paused nor under an active promise or plan,
/// and is at least `after_days` days past its due date. A later payment still applies and is
/// reported as a recovery. Without this table nothing is written off by age.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteOffFile {
    /// Days past the due date (in the client's time zone), 30 to 3650, e.g. `360`.
    pub after_days: Spanned<i64>,
}

/// `[tasks]`: phone collection. A step with `action = "task"` (or `channels = ["call"]`), a
/// cadence's `on_exhausted = "task"`, a debtor who says they paid and (if `[inbound]` says
/// so) other replies open a task; agents list them (`GET /v1/tasks?state=open`), claim one
/// (`POST /v1/tasks/{id}/claim`) and record how it went (`POST /v1/tasks/{id}/outcome`).
/// Every task is due inside the client's contact window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksFile {
    /// Queue order, higher first: a number expression over the fields segment rules read
    /// (`invoice.balance`, `invoice.amount`, `invoice.days_overdue`, `client.facts.*`...),
    /// computed when the task is created. Default `"invoice.balance * invoice.days_overdue"`
    /// (the larger and older the debt, the sooner the call); for example
    /// `"invoice.balance * (1 + client.facts.broken_promises)"`. Ties go to the earlier
    /// `due_at`. An evaluation that fails counts as 0.
    #[serde(default)]
    pub priority: Option<Spanned<String>>,
    /// How long a claim holds: a claimed task with no outcome after this long is back in the
    /// queue for anyone to claim, e.g. `"30m"`, `"2h"` (the default). 1m to 7d.
    #[serde(default)]
    pub claim_timeout: Option<Spanned<String>>,
    /// What "no answer" does: `{ attempts = 3, spacing = "1d" }` (the default) plans the next
    /// call `spacing` later (then inside the contact window) until `attempts` calls were made
    /// for the invoice, the first included; then the timeline says the attempts are used up.
    /// `attempts` 1 to 20, `spacing` 1m to 30d.
    #[serde(default)]
    pub no_answer: Option<NoAnswerFile>,
}

/// `no_answer = { attempts = 3, spacing = "1d" }` of `[tasks]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoAnswerFile {
    /// Most calls per invoice, the first included (1 to 20).
    pub attempts: Spanned<i64>,
    /// Wait before the next call, e.g. `"4h"`, `"1d"` (1m to 30d).
    pub spacing: Spanned<String>,
}

/// `[inbound]`: SMS and WhatsApp replies that matter. Opt-out keywords (`[opt_out]`) are
/// handled first, as always.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundFile {
    /// Phrases meaning "I already paid". A reply containing one (as whole words, ignoring
    /// case, accents and punctuation: "¡Ya PAGUÉ!" contains "ya pagué") pauses every open
    /// invoice of the client with reason `debtor_says_paid` and opens one review task, so
    /// nobody is chased for money they may have paid. Replaces the default list, which covers
    /// Spanish ("ya pagué", "ya hice el pago", "ya transferí", "ya consigné"...), Brazilian
    /// Portuguese ("paguei", "já paguei", "já fiz o pix"...) and English ("already paid", "i
    /// paid", "payment sent"...). `[]` turns it off. At most 200 phrases of 1 to 100
    /// characters.
    #[serde(default)]
    pub says_paid: Option<Spanned<Vec<String>>>,
    /// What any other reply does (besides being logged on the client's timeline):
    /// `"nothing"` (the default) or `"task"` (open a review task for the client, one at a
    /// time).
    #[serde(default)]
    pub other_replies: Option<Spanned<String>>,
}

/// `[facts]`: the window of history behind a client's behavioural facts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsFile {
    /// Averages and shares (`paid_late_share`, `avg_days_late`, `max_days_late`, `avg_ticket`)
    /// are over the client's last this many invoices paid in full. 1 to 100; 12 when omitted.
    #[serde(default)]
    pub last_paid: Option<Spanned<i64>>,
}

/// `[promises]`. While a promise is active the invoice's regular cadence waits. Steps of the
/// regular cadence whose time passes meanwhile are skipped (logged), never sent late in a burst.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromisesFile {
    /// Cadence whose steps are relative to the promised date, e.g. `"promise"` with one step at
    /// `offset = "-1d"` (the day before). Steps whose time had already passed when the promise
    /// was made are not sent. When omitted, no reminder goes out during a promise.
    #[serde(default)]
    pub cadence: Option<Spanned<String>>,
    /// How long after the promised date the money may still arrive before the promise counts as
    /// broken: `"0d"` (broken at the end of the promised day, in the client's zone), `"2d"`,
    /// `"12h"`. Default `"1d"`.
    #[serde(default)]
    pub grace: Option<Spanned<String>>,
    /// Cadence started when a promise or a plan instalment is broken; its steps are relative to
    /// the moment it broke (`offset = "0d"`: at once, inside the contact window). When it ends,
    /// the regular cadence resumes with its next future step. When omitted, the regular cadence
    /// resumes at once.
    #[serde(default)]
    pub broken_cadence: Option<Spanned<String>>,
    /// Furthest a promised date may be, in days from today (1 to 365). Default 60.
    #[serde(default)]
    pub max_days: Option<Spanned<u32>>,
}

/// `[plans]`. While a plan is active the regular cadence waits; each instalment gets the plan
/// cadence, and an instalment not paid by its date plus grace breaks the plan (the
/// `[promises] broken_cadence` runs and the client's broken-promise count grows).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlansFile {
    /// Cadence whose steps are relative to each instalment's date, e.g. `"instalments"` with
    /// steps at `"-3d"` and `"0d"`. When omitted, no reminder goes out for instalments.
    #[serde(default)]
    pub cadence: Option<Spanned<String>>,
    /// Grace after each instalment's date, as for promises. Default `"1d"`.
    #[serde(default)]
    pub grace: Option<Spanned<String>>,
    /// Most instalments in one plan (1 to 120). Default 24.
    #[serde(default)]
    pub max_instalments: Option<Spanned<u32>>,
    /// Latest final instalment, in days from today (1 to 3650). Default 730.
    #[serde(default)]
    pub max_days: Option<Spanned<u32>>,
}

/// `[payments]`: terms shown in messages. Amounts are decimal strings in the invoice currency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsFile {
    /// Payment link for invoices without their own `payment_url`, as a template, e.g.
    /// `"https://pagos.example.co/pagar/{{ invoice.id }}"`. Templates and the WhatsApp URL
    /// button get it as `invoice.payment_url`.
    #[serde(default)]
    pub link: Option<Spanned<String>>,
    /// Discount for paying early: `{ percent = "2", days_before_due = 10 }` (2 % off when paid
    /// at least 10 days before the due date). Templates before that date get
    /// `invoice.discount.{percent, amount, pay_by}`; a payment of the discounted amount by then
    /// settles the invoice in full.
    #[serde(default)]
    pub early_discount: Option<EarlyDiscountFile>,
    /// Flat fee per overdue step reached, e.g. `"15000"`; shown as `invoice.charges`, never
    /// added to the balance.
    #[serde(default)]
    pub late_fee: Option<Spanned<String>>,
    /// Yearly interest in percent accrued daily after the due date, e.g. `"24"`; shown only.
    #[serde(default)]
    pub interest_yearly_percent: Option<Spanned<String>>,
    /// Cap of fees plus interest in percent of the balance, e.g. `"10"`.
    #[serde(default)]
    pub charges_cap_percent: Option<Spanned<String>>,
    /// What the regular cadence counts from after a partial payment: `"due_date"` (default:
    /// the cadence continues from the original due date) or `"last_payment"` (the steps not
    /// yet sent move later by as many days as the last payment came after the due date, so a
    /// debtor who just paid part is not chased the next morning). Either way no step is sent
    /// twice, and none is skipped because of a payment.
    #[serde(default)]
    pub cadence_anchor: Option<Spanned<String>>,
    /// A thank-you message once an invoice is paid in full, e.g.
    /// `thank_you = { template = "thank_you", channels = ["email", "whatsapp", "sms"] }`.
    /// Leave it out and no thank-you is sent. See [`ThankYouFile`].
    #[serde(default)]
    pub thank_you: Option<ThankYouFile>,
}

/// `thank_you = { template = "thank_you", channels = ["email", "whatsapp", "sms"] }`: the
/// message sent once when an invoice becomes paid in full (also a recovery after a write-off;
/// never for a void invoice). It is queued in the same write as the payment and sent by the
/// dispatcher like a reminder: at most once per invoice (also across a crash or restart),
/// inside the client's contact window, on the first channel of the list the client can be
/// reached on (opt-outs respected; the client's preferred channels first). A refund that
/// reopens the invoice before it went out cancels it. Templates see the paid invoice
/// (`invoice.balance` is zero) and `step.name = "thank_you"`, `step.tone = "thanks"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThankYouFile {
    /// Template name: `templates/<locale>/<template>.txt` (plus `.subject.txt` and `.html`
    /// for email, optional `.short.txt` for SMS and WhatsApp), e.g. `"thank_you"`.
    pub template: Spanned<String>,
    /// Channels to try, in order, until one delivers: `"email"`, `"sms"`, `"whatsapp"`,
    /// `"webhook"`. WhatsApp outside the debtor's 24-hour window needs an approved template,
    /// which a thank-you does not map: it then falls through to the next channel.
    pub channels: Spanned<Vec<Spanned<String>>>,
}

/// `early_discount = { percent = "2", days_before_due = 10 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyDiscountFile {
    /// Discount in percent, more than 0 and less than 100, e.g. `"2"`.
    pub percent: Spanned<String>,
    /// Days before the due date by which the payment must arrive (1 to 365).
    pub days_before_due: Spanned<u32>,
}

/// `[channels.KIND]`: how plazo treats one channel kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettingsFile {
    /// How long to wait for a "delivered" receipt before trying the step's next channel, e.g.
    /// `"2h"` or `"30m"`. A "failed"/"undelivered" receipt falls back at once. Only for
    /// channels that report delivery (`sms` through Twilio, `whatsapp`). When omitted, a
    /// step is done as soon as the provider accepts the message (a later failure receipt is
    /// recorded but tries no other channel).
    #[serde(default)]
    pub receipt_timeout: Option<Spanned<String>>,
    /// SMS only: `plazo check` warns when a template renders to more segments than this
    /// (160 GSM-7 or 70 UCS-2 characters each; one accented letter outside GSM-7, like `á`,
    /// switches the whole message to UCS-2). Default 3.
    #[serde(default)]
    pub max_segments: Option<Spanned<u32>>,
}

/// `[opt_out]`: single-word replies that stop (or resume) messages on the channel they came
/// on. Case, accents and surrounding punctuation are ignored; "STOP PLEASE" does not count.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutFile {
    /// Opt-out words. Default: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT,
    /// BAJA, ALTO, PARAR, PARE, CANCELAR, DETENER, SAIR.
    #[serde(default)]
    pub keywords: Option<Spanned<Vec<String>>>,
    /// Opt-back-in words. Default: START, UNSTOP, ALTA, REANUDAR, VOLTAR.
    #[serde(default)]
    pub opt_in_keywords: Option<Spanned<Vec<String>>>,
}

/// `whatsapp = { ... }` of a step: the approved template sent when the debtor's 24-hour
/// window is closed (a business-initiated message). Inside the window, the step's own text
/// template is sent as free-form text instead.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppStepFile {
    /// Template name exactly as approved in WhatsApp Manager, e.g. `"recordatorio_pago"`.
    pub template: Spanned<String>,
    /// Template language code, e.g. `"es"`, `"es_MX"`, `"pt_BR"`.
    pub language: Spanned<String>,
    /// Language code by client locale, overriding `language`: `{ en = "en_US", es-mx = "es_MX" }`.
    #[serde(default)]
    pub languages: BTreeMap<String, String>,
    /// Body parameters in order, each one of `{ text = "{{ client.first_name }}" }`,
    /// `{ currency = "balance" }` (or `"amount"`), `{ date_time = "due_date" }`.
    #[serde(default)]
    pub body: Option<Spanned<Vec<TemplateParamFile>>>,
    /// Text (a template expression) for the dynamic suffix of the template's URL button, e.g.
    /// `"{{ invoice.id }}"`.
    #[serde(default)]
    pub button_url: Option<Spanned<String>>,
}

/// One WhatsApp body parameter; exactly one field is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateParamFile {
    /// A text parameter rendered from the message context: `"{{ client.first_name }}"`.
    #[serde(default)]
    pub text: Option<String>,
    /// A currency parameter: `"balance"` (still owed), `"amount"` (original) or
    /// `"outstanding"` (still owed on the promise or instalment the message is about).
    #[serde(default)]
    pub currency: Option<String>,
    /// A date parameter: `"due_date"` or `"arrangement_date"` (the promised or instalment
    /// date).
    #[serde(default)]
    pub date_time: Option<String>,
}

/// `[defaults]`: policy-wide defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsFile {
    /// IANA time zone used when a client has none, e.g. `"America/Bogota"`,
    /// `"America/Mexico_City"`, `"Europe/Madrid"`.
    pub timezone: Spanned<String>,
    /// Locale used when a client has none, and the last template fallback, e.g. `"es-CO"`,
    /// `"es"`, `"en"`. Templates for every step must exist for it.
    pub locale: Spanned<String>,
    /// ISO 4217 currency assumed when an invoice gives none, e.g. `"COP"`, `"MXN"`, `"EUR"`.
    pub currency: Spanned<String>,
    /// Local time (24-hour `"HH:MM"`) at which steps without `at` go out, for invoices due on a
    /// date.
    pub send_at: Spanned<String>,
    /// When debtors may be contacted, unless their segment overrides it:
    /// `{ days = "mon-fri", from = "08:00", to = "19:00" }`.
    pub window: WindowFile,
    /// How late a message step may still go out after the time its cadence gives it, when the
    /// step sets no `max_late` of its own: `"1d"`, `"12h"` (1h to 30d). Past it the step is
    /// skipped with the reason on the timeline instead of sent late ("hoy vence" three days
    /// after the due date). Without it (and without the step's own) a step goes out however
    /// late.
    #[serde(default)]
    pub max_late: Option<Spanned<String>>,
}

/// A contact window: the days and local hours during which messages may go out. Messages due
/// outside it wait for the next allowed moment; they are never dropped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowFile {
    /// Allowed days: `"mon-fri"`, `"mon-sat"`, `"daily"`, another range like `"tue-sat"`, one
    /// day like `"sat"`, or a list like `["mon", "wed", "fri"]`. Days are `mon tue wed thu fri
    /// sat sun`.
    pub days: Spanned<DaysFile>,
    /// First allowed local time, `"HH:MM"` (inclusive).
    pub from: Spanned<String>,
    /// End of the window, `"HH:MM"` (exclusive); must be later than `from`. `"24:00"` means
    /// the end of the day.
    pub to: Spanned<String>,
}

/// The `days` of a window, as written: one string or a list of day names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaysFile {
    /// `"mon-fri"`, `"daily"`, `"sat"`.
    Named(String),
    /// `["mon", "wed"]`.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for DaysFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DaysVisitor;
        impl<'de> Visitor<'de> for DaysVisitor {
            type Value = DaysFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "days as \"mon-fri\", \"mon-sat\", \"daily\" or a list like [\"mon\", \"wed\"]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DaysFile, E> {
                Ok(DaysFile::Named(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DaysFile, A::Error> {
                let mut days = Vec::new();
                while let Some(day) = seq.next_element::<String>()? {
                    days.push(day);
                }
                Ok(DaysFile::List(days))
            }
        }
        d.deserialize_any(DaysVisitor)
    }
}

/// `[company]`: the creditor's details, available to templates as `company.*`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyFile {
    /// Trading name as debtors know it, e.g. `"Ferretería El Tornillo S.A.S."`.
    pub name: Spanned<String>,
    /// Address debtors can reply to, e.g. `"cartera@example.co"`.
    #[serde(default)]
    pub email: Option<Spanned<String>>,
    /// Phone debtors can call, e.g. `"+57 601 555 0100"`.
    #[serde(default)]
    pub phone: Option<String>,
    /// Website, e.g. `"https://example.co"`.
    #[serde(default)]
    pub website: Option<String>,
}

/// `[segments.NAME]`: a group of clients sharing a cadence. A client joins a segment, in this
/// order of precedence: by naming it (the client's `segment`); through the first segment, in
/// file order, whose `when` rule matches; through a tag equal to its name; else the
/// `default_segment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentFile {
    /// Name of the cadence its clients follow; one of the `[cadences.*]`.
    pub cadence: Spanned<String>,
    /// Contact window replacing `defaults.window` for this segment.
    #[serde(default)]
    pub window: Option<WindowFile>,
    /// A rule over the client's behaviour and the invoice, e.g.
    /// `"client.facts.broken_promises >= 2 or client.facts.avg_days_late > 45"`. Fields:
    /// `client.facts.*` (`paid_invoices`, `paid_late_share`, `avg_days_late`, `max_days_late`,
    /// `avg_ticket.COP`, `promises_kept`, `broken_promises`, `days_since_last_payment`),
    /// `client.tags`, `client.country`, `client.locale`, `client.timezone`, `invoice.amount`,
    /// `invoice.balance`, `invoice.currency`, `invoice.days_overdue`, `invoice.metadata.KEY`.
    /// Operators: `and`, `or`, `not`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `in` (`"vip" in
    /// client.tags`). Rules are tried in file order; the first that matches wins. Re-evaluated
    /// whenever the client's facts change and once a day.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    /// `"client"`: one message a day per client. Reminders of one client falling due on the
    /// same local day go out as the first one's message, which lists every open invoice of
    /// the client (the statement); the others are recorded on their invoices' timelines as
    /// sent in it (same message id), advance their cadences, and count once against caps.
    #[serde(default)]
    pub group: Option<Spanned<String>>,
}

/// `[cadences.NAME]`: an ordered list of steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceFile {
    /// The steps, each a `[[cadences.NAME.steps]]` table, in strictly increasing `offset` order.
    pub steps: Spanned<Vec<StepFile>>,
    /// What happens once the last step has passed: `"nothing"` (the default; the invoice
    /// stays open and unchased), `"task"` (open a call task for a person; the invoice stays
    /// open), `"hand_off:PARTNER"` (or `"hand_off"` with a single partner) or `"write_off"`. The timeline says the cadence is exhausted either way.
    #[serde(default)]
    pub on_exhausted: Option<Spanned<String>>,
    /// `"client"`: group the reminders of this cadence by client and local day, as a
    /// segment's `group` does (either one turns grouping on).
    #[serde(default)]
    pub group: Option<Spanned<String>>,
}

/// `[partners.NAME]`: a collection agency or law firm invoices can be handed to (a
/// `hand_off` step, `on_exhausted`, or `POST /v1/invoices/{id}/hand-off`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerFile {
    /// The partner's name as people read it, e.g. `"Cobranzas del Norte S.A.S."`.
    pub name: Spanned<String>,
    /// Where the partner is reached (shown on timelines), optional.
    #[serde(default)]
    pub email: Option<Spanned<String>>,
}

/// `[[cadences.NAME.steps]]`: one reminder relative to the due date.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Step name, unique within the cadence; letters, digits, `_` and `-` (`"courtesy"`,
    /// `"final_notice"`). Shown in logs and reports.
    pub name: Spanned<String>,
    /// When, relative to the due date: a signed number and a unit, `d` (calendar days, keeps
    /// the local time), `h` or `m` (exact hours or minutes). `"-3d"` is three days before,
    /// `"0d"` the due date, `"+2h"` two hours after a due instant. Must increase step by step.
    pub offset: Spanned<String>,
    /// Local time (`"HH:MM"`) for this step; `defaults.send_at` when omitted. Only for `d`
    /// offsets.
    #[serde(default)]
    pub at: Option<Spanned<String>>,
    /// What the step does: `"remind"` (the default: send a message), `"task"` (open a call
    /// task for a person, due inside the contact window; see `[tasks]`), `"hand_off:PARTNER"`
    /// (hand the invoice to a partner of `[partners.*]`; plain `"hand_off"` when there is
    /// only one), or `"write_off"` (write the invoice off). Only `remind` steps send a
    /// message, so only they take `channels`, `template`, `tone` and `whatsapp`.
    #[serde(default)]
    pub action: Option<Spanned<String>>,
    /// Channels to try, in order, until one delivers: `"email"`, `"sms"`, `"whatsapp"`,
    /// `"webhook"`. Required for `remind` steps. `["call"]` (alone, with no `template`,
    /// `tone` or `whatsapp`) is a phone call: the same as `action = "task"`.
    #[serde(default)]
    pub channels: Option<Spanned<Vec<Spanned<String>>>>,
    /// Template name: files `TEMPLATES_DIR/LOCALE/NAME.txt` (and, for email,
    /// `NAME.subject.txt` and `NAME.html`). Required for `remind` steps.
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    /// Tone label passed to templates as `step.tone` (`"friendly"`, `"firm"`, `"final"`).
    /// Required for `remind` steps.
    #[serde(default)]
    pub tone: Option<Spanned<String>>,
    /// The approved WhatsApp template for this step (needed to reach debtors on WhatsApp
    /// outside their 24-hour window).
    /// How late this message may still go out after its time (`"1d"`, `"12h"`; 1h to 30d);
    /// `[defaults] max_late` when omitted. A step held back longer (the daemon was down, a
    /// holiday, a contact cap, an invoice put in after its due date) is skipped with the reason.
    #[serde(default)]
    pub max_late: Option<Spanned<String>>,
    #[serde(default)]
    pub whatsapp: Option<WhatsAppStepFile>,
}
