//! The variables a template sees: `client`, `invoice`, `company`, `step` and `locale`.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use minijinja::Value;
use minijinja::value::{Enumerator, Object};
use rust_decimal::Decimal;

use super::format::{format_date, format_money};
use crate::domain::{
    Client, ClientId, Currency, Due, IndexLine, InstalmentState, Invoice, InvoiceId, InvoiceStatus,
    OpenLine, Track,
};
use crate::policy::Company;
use crate::policy::terms::{PaymentTerms, charges_due, discount_offer};

/// The cadence step a message belongs to, as templates see it (`step.name`, `step.tone`,
/// `step.index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// Step name (`courtesy`, `final_notice`).
    pub name: String,
    /// Tone label (`friendly`, `firm`, `final`).
    pub tone: String,
    /// Index of the step in its cadence (0-based).
    pub index: u32,
}

#[cfg(test)]
impl StepInfo {
    /// A step named `name`, for tests.
    pub(crate) fn for_test(name: &str, tone: &str, index: u32) -> Self {
        StepInfo {
            name: name.into(),
            tone: tone.into(),
            index,
        }
    }
}

/// A map of a context (`client`, `invoice`, a statement line...) as templates see it: fields
/// with static names, kept in one allocation in the order they were given. A message's
/// context holds a few dozen of them: built as a `BTreeMap` each (sorted, its nodes allocated,
/// then boxed), they took 17 µs of a 40-invoice client's context, and 7.5 µs this way
/// (`cargo bench --bench render`).
#[derive(Debug)]
struct Fields<const N: usize>([(&'static str, Value); N]);

impl<const N: usize> Object for Fields<N> {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        // At most 16 fields (`map` checks it when it compiles): a scan beats a search.
        self.0
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // In name order, as a sorted map would list them (`items`, `dictsort`, loops over keys).
        let mut names: Vec<&'static str> = self.0.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        Enumerator::Values(names.into_iter().map(Value::from).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(N)
    }
}

/// A context map of `entries` (each name once).
fn map<const N: usize>(entries: [(&'static str, Value); N]) -> Value {
    const {
        assert!(
            N <= 16,
            "a context map's fields are found by a scan: keep it short"
        )
    };
    debug_assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, (name, _))| entries[..i].iter().all(|(other, _)| other != name)),
        "a context map names a field twice"
    );
    Value::from_object(Fields(entries))
}

/// The due date as a calendar date in `zone`.
fn due_date(due: Due, zone: &TimeZone) -> Date {
    match due {
        Due::Date(d) => d,
        Due::Instant(t) => t.to_zoned(zone.clone()).date(),
    }
}

/// Builds the template context for one message.
///
/// Amounts are formatted for `locale` and the invoice currency; the due date is a long date in
/// `locale`; `days_until_due` / `days_overdue` count calendar days in `zone` (the client's) and
/// are never negative; `is_overdue` is true once the due date (or instant) has passed.
///
/// ```text
/// client   {id, name, first_name, email, phone, open_invoices, open_invoices_more, open_total}
/// invoice  {id, number, currency, amount, balance, amount_raw, balance_raw, due_date,
///           due_date_iso, days_until_due, days_overdue, is_overdue, payment_url, metadata,
///           discount, charges}
/// company  {name, email, phone, website}
/// step     {name, tone, index}
/// arrangement  none, or in promise/plan/broken-promise messages {kind, instalment,
///           instalments, amount, amount_raw, outstanding, outstanding_raw, due_date,
///           due_date_iso, broken, channel}
/// locale   the locale the values were formatted for
/// ```
pub fn message_context(
    client: &Client,
    invoice: &Invoice,
    company: &Company,
    step: &StepInfo,
    locale: &str,
    zone: &TimeZone,
    now: Timestamp,
) -> Value {
    message_context_with_terms(
        client,
        invoice,
        company,
        step,
        locale,
        zone,
        now,
        &TermsInput::default(),
    )
}

/// The policy's payment terms for one message: see [`message_context_with_terms`].
#[derive(Debug, Clone, Default)]
pub struct TermsInput {
    /// `[payments]` of the policy.
    pub terms: PaymentTerms,
    /// Overdue steps reached so far, including this one (for flat late fees).
    pub overdue_steps: u32,
    /// The promise or plan the message is about, if any.
    pub arrangement: Option<ArrangementInfo>,
    /// The client's other open invoices (`client.open_invoices`, `client.open_total`).
    pub statement: Statement,
}

/// Most of the client's other open invoices listed in a message (`client.open_invoices`); the
/// rest are counted in `client.open_invoices_more` and still summed in `client.open_total`.
pub const STATEMENT_CAP: usize = 10;

/// One of the client's other open invoices, as the statement lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    /// Invoice number shown to the debtor.
    pub number: String,
    /// Its currency.
    pub currency: Currency,
    /// What is still owed on it.
    pub balance: Decimal,
    /// When it is (was) due.
    pub due: Due,
    /// Its own payment link, when it has one.
    pub payment_url: Option<String>,
}

/// The client's other open invoices when a message is rendered: what the statement block of
/// the shipped templates shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statement {
    /// At most [`STATEMENT_CAP`] of them, oldest due date first.
    pub invoices: Vec<OpenInvoice>,
    /// How many more were left out of `invoices`.
    pub more: usize,
    /// What they all owe (listed or not), per currency, in currency-code order.
    pub totals: Vec<(Currency, Decimal)>,
}

impl Statement {
    /// The statement of `invoices` (the client's, as read from its invoice index) for a message
    /// about invoice `current`: only the others still open with a balance (paid, void,
    /// written-off and handed-off invoices are left out), oldest due date (in `zone`) first,
    /// at most [`STATEMENT_CAP`] listed.
    pub fn of(
        invoices: impl IntoIterator<Item = Invoice>,
        current: &InvoiceId,
        zone: &TimeZone,
    ) -> Statement {
        let lines: Vec<(InvoiceId, OpenLine)> = invoices
            .into_iter()
            .filter_map(|inv| match IndexLine::of(&inv) {
                IndexLine::Open(line) => Some((inv.id, line)),
                IndexLine::Settled | IndexLine::Unknown => None,
            })
            .collect();
        Statement::of_lines(lines.iter().map(|(id, l)| (id, l)), current, zone)
    }

    /// [`Statement::of`] from the open lines the client's invoice index keeps (each invoice id
    /// with its [`OpenLine`]), without reading the invoices; only the listed lines are copied.
    pub fn of_lines<'a>(
        lines: impl IntoIterator<Item = (&'a InvoiceId, &'a OpenLine)>,
        current: &InvoiceId,
        zone: &TimeZone,
    ) -> Statement {
        let mut open: Vec<(Date, &OpenLine)> = Vec::new();
        let mut totals: BTreeMap<&str, (Currency, Decimal)> = BTreeMap::new();
        for (id, line) in lines {
            if id == current || line.balance <= Decimal::ZERO {
                continue;
            }
            let entry = totals
                .entry(line.currency.code())
                .or_insert((line.currency, Decimal::ZERO));
            if let Some(sum) = entry.1.checked_add(line.balance) {
                entry.1 = sum;
            }
            open.push((due_date(line.due_at, zone), line));
        }
        open.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.number.cmp(&b.1.number)));
        let more = open.len().saturating_sub(STATEMENT_CAP);
        open.truncate(STATEMENT_CAP);
        Statement {
            invoices: open
                .into_iter()
                .map(|(_, l)| OpenInvoice {
                    number: l.number.clone(),
                    currency: l.currency,
                    balance: l.balance,
                    due: l.due_at,
                    payment_url: l.payment_url.clone(),
                })
                .collect(),
            more,
            totals: totals.into_values().collect(),
        }
    }
}

/// The promise or plan instalment a message is about, as templates see it (`arrangement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrangementInfo {
    /// `promise` or `plan`.
    pub kind: &'static str,
    /// Instalment number, from 1.
    pub instalment: u32,
    /// Number of instalments (1 for a promise).
    pub instalments: u32,
    /// Amount of the instalment (the promised amount).
    pub amount: Decimal,
    /// What is still owed on it.
    pub outstanding: Decimal,
    /// When it is (was) due.
    pub due: Due,
    /// True in messages of the broken-promise cadence.
    pub broken: bool,
    /// Channel the arrangement was made on.
    pub channel: Option<String>,
}

impl ArrangementInfo {
    /// What a reminder on `track` is about: the chased instalment of an instalment step, the
    /// missed one of a broken-promise step; `None` for the regular cadence.
    pub fn for_track(invoice: &Invoice, track: Track) -> Option<Self> {
        let (id, broken) = match track {
            Track::Instalment { arrangement, .. } | Track::Deadline { arrangement, .. } => {
                (arrangement, false)
            }
            Track::Broken { arrangement } => (arrangement, true),
            Track::Cadence | Track::ThankYou => return None,
        };
        let arr = invoice.arrangement(id)?;
        let index = if broken {
            arr.instalments
                .iter()
                .position(|i| i.state == InstalmentState::Missed)
                .unwrap_or(arr.current as usize)
        } else {
            arr.current as usize
        };
        let inst = arr.instalments.get(index)?;
        Some(ArrangementInfo {
            kind: arr.kind.as_str(),
            instalment: u32::try_from(index + 1).unwrap_or(u32::MAX),
            instalments: u32::try_from(arr.instalments.len()).unwrap_or(u32::MAX),
            amount: inst.amount,
            outstanding: inst.amount.checked_sub(inst.paid).unwrap_or(Decimal::ZERO),
            due: inst.due,
            broken,
            channel: arr.channel.clone(),
        })
    }
}

/// The link pattern rendered for an invoice (it sees `invoice.id`, `invoice.number`,
/// `invoice.currency`, `invoice.balance_raw` and `client.id`); `None` when it fails.
pub fn render_link(pattern: &str, client: &Client, invoice: &Invoice) -> Option<String> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    let env = ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env
    });
    let ctx = minijinja::context! {
        invoice => minijinja::context! {
            id => invoice.id.as_str(),
            number => invoice.number.as_str(),
            currency => invoice.currency.code(),
            balance_raw => invoice.balance.to_string(),
        },
        client => minijinja::context! { id => client.id.as_str() },
    };
    env.render_str(pattern, ctx)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// [`message_context`] plus the policy's payment terms: `invoice.payment_url` falls back to
/// the policy's link pattern; `invoice.discount` (`percent`, `amount`, `amount_raw`, `pay_by`,
/// `pay_by_iso`) is set while an early-payment discount is open; `invoice.charges`
/// (`late_fees`, `interest`, `total` = fees plus interest, `total_due` = balance plus both;
/// `late_fees_raw`, `interest_raw` and `total_due_raw` unformatted, `"0"` when nothing
/// accrued) once overdue with late charges configured. Both are `none` otherwise.
///
/// The statement of the client's other open invoices ([`TermsInput::statement`]):
/// `client.open_invoices` is a list (empty when there are none) of `{number, currency,
/// balance, balance_raw, due_date, due_date_iso, days_overdue, is_overdue, payment_url}`, amounts and dates
/// formatted for `locale`; `client.open_invoices_more` counts those left out of the list; and
/// `client.open_total` is a list of `{currency, amount, amount_raw}`, one per currency, summing
/// all of them.
#[allow(clippy::too_many_arguments)]
pub fn message_context_with_terms(
    client: &Client,
    invoice: &Invoice,
    company: &Company,
    step: &StepInfo,
    locale: &str,
    zone: &TimeZone,
    now: Timestamp,
    terms: &TermsInput,
) -> Value {
    let today = now.to_zoned(zone.clone()).date();
    let due = due_date(invoice.due_at, zone);
    let days = today
        .until(due)
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0);
    let is_overdue = match invoice.due_at {
        Due::Date(d) => today > d,
        Due::Instant(t) => now > t,
    };
    let first_name = client
        .name
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    let payment_url = invoice.payment_url.clone().or_else(|| {
        terms
            .terms
            .link
            .as_deref()
            .and_then(|p| render_link(p, client, invoice))
    });
    let money = |d: Decimal| Value::from(format_money(d, invoice.currency, locale));
    let discount = match discount_offer(&terms.terms, invoice, zone, now) {
        Some(o) => map([
            ("percent", Value::from(o.percent.normalize().to_string())),
            ("amount", money(o.amount)),
            ("amount_raw", Value::from(o.amount.to_string())),
            ("pay_by", Value::from(format_date(o.pay_by, locale))),
            ("pay_by_iso", Value::from(o.pay_by.to_string())),
        ]),
        None => Value::from(()),
    };
    let charges = match charges_due(&terms.terms, invoice, terms.overdue_steps, zone, now) {
        Some(c) => map([
            ("late_fees", money(c.late_fees)),
            (
                "late_fees_raw",
                Value::from(c.late_fees.normalize().to_string()),
            ),
            ("interest", money(c.interest)),
            (
                "interest_raw",
                Value::from(c.interest.normalize().to_string()),
            ),
            (
                "total",
                money(c.late_fees.checked_add(c.interest).unwrap_or(c.late_fees)),
            ),
            ("total_due", money(c.total_due)),
            ("total_due_raw", Value::from(c.total_due.to_string())),
        ]),
        None => Value::from(()),
    };
    let arrangement = match &terms.arrangement {
        Some(a) => {
            let due = due_date(a.due, zone);
            map([
                ("kind", Value::from(a.kind)),
                ("instalment", Value::from(a.instalment)),
                ("instalments", Value::from(a.instalments)),
                ("amount", money(a.amount)),
                ("amount_raw", Value::from(a.amount.to_string())),
                ("outstanding", money(a.outstanding)),
                ("outstanding_raw", Value::from(a.outstanding.to_string())),
                ("due_date", Value::from(format_date(due, locale))),
                ("due_date_iso", Value::from(due.to_string())),
                ("broken", Value::from(a.broken)),
                ("channel", Value::from(a.channel.clone())),
            ])
        }
        None => Value::from(()),
    };
    let open_invoices: Vec<Value> = terms
        .statement
        .invoices
        .iter()
        .map(|o| {
            let due = due_date(o.due, zone);
            let days = today
                .until(due)
                .map(|s| i64::from(s.get_days()))
                .unwrap_or(0);
            map([
                ("number", Value::from(o.number.as_str())),
                ("currency", Value::from(o.currency.code())),
                (
                    "balance",
                    Value::from(format_money(o.balance, o.currency, locale)),
                ),
                ("balance_raw", Value::from(o.balance.to_string())),
                ("due_date", Value::from(format_date(due, locale))),
                ("due_date_iso", Value::from(due.to_string())),
                ("days_overdue", Value::from((-days).max(0))),
                ("is_overdue", Value::from(days < 0)),
                ("payment_url", Value::from(o.payment_url.clone())),
            ])
        })
        .collect();
    let open_total: Vec<Value> = terms
        .statement
        .totals
        .iter()
        .map(|(cur, amount)| {
            map([
                ("currency", Value::from(cur.code())),
                ("amount", Value::from(format_money(*amount, *cur, locale))),
                ("amount_raw", Value::from(amount.to_string())),
            ])
        })
        .collect();
    let metadata: BTreeMap<String, Value> = invoice
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();

    map([
        (
            "client",
            map([
                ("id", Value::from(client.id.as_str())),
                ("name", Value::from(client.name.as_str())),
                ("first_name", Value::from(first_name)),
                ("email", Value::from(client.email.clone())),
                ("phone", Value::from(client.phone.clone())),
                ("open_invoices", Value::from(open_invoices)),
                (
                    "open_invoices_more",
                    Value::from(u64::try_from(terms.statement.more).unwrap_or(u64::MAX)),
                ),
                ("open_total", Value::from(open_total)),
            ]),
        ),
        (
            "invoice",
            map([
                ("id", Value::from(invoice.id.as_str())),
                ("number", Value::from(invoice.number.as_str())),
                ("currency", Value::from(invoice.currency.code())),
                (
                    "amount",
                    Value::from(format_money(invoice.amount, invoice.currency, locale)),
                ),
                (
                    "balance",
                    Value::from(format_money(invoice.balance, invoice.currency, locale)),
                ),
                ("amount_raw", Value::from(invoice.amount.to_string())),
                ("balance_raw", Value::from(invoice.balance.to_string())),
                ("due_date", Value::from(format_date(due, locale))),
                ("due_date_iso", Value::from(due.to_string())),
                ("days_until_due", Value::from(days.max(0))),
                ("days_overdue", Value::from((-days).max(0))),
                ("is_overdue", Value::from(is_overdue)),
                ("payment_url", Value::from(payment_url)),
                ("discount", discount),
                ("charges", charges),
                ("metadata", Value::from(metadata)),
            ]),
        ),
        (
            "company",
            map([
                ("name", Value::from(company.name.as_str())),
                ("email", Value::from(company.email.clone())),
                ("phone", Value::from(company.phone.clone())),
                ("website", Value::from(company.website.clone())),
            ]),
        ),
        (
            "step",
            map([
                ("name", Value::from(step.name.as_str())),
                ("tone", Value::from(step.tone.as_str())),
                ("index", Value::from(step.index)),
            ]),
        ),
        ("arrangement", arrangement),
        ("locale", Value::from(locale)),
    ])
}

/// Two sample contexts for checking templates: an invoice due in three days without a payment
/// link, with the early-payment discount open and other open invoices; and one ten days
/// overdue with a link, a partial payment, late charges and no other open invoice.
pub(crate) fn sample_contexts(company: &Company, locale: &str) -> Vec<Value> {
    let (Ok(client_id), Ok(invoice_id), Ok(currency)) = (
        ClientId::new("C-0001"),
        InvoiceId::new("INV-0001"),
        Currency::parse("COP"),
    ) else {
        return Vec::new();
    };
    let now = Timestamp::constant(1_773_756_000, 0); // 2026-03-17T14:00:00Z
    let client = Client {
        id: client_id,
        name: "María Fernanda Gómez".to_owned(),
        email: Some("maria@example.co".to_owned()),
        phone: Some("+573001234567".to_owned()),
        whatsapp: None,
        locale: Some(locale.to_owned()),
        timezone: None,
        country: Some("CO".to_owned()),
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: Vec::new(),
        tags: Vec::new(),
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let invoice = Invoice {
        id: invoice_id,
        client_id: client.id.clone(),
        number: "FV-1001".to_owned(),
        currency,
        amount: Decimal::new(125_000_050, 2),
        balance: Decimal::new(125_000_050, 2),
        issued_at: Some(Date::constant(2026, 2, 18)),
        due_at: Due::Date(Date::constant(2026, 3, 20)),
        payment_url: None,
        metadata: BTreeMap::from([("order".to_owned(), "OC-778".to_owned())]),
        status: InvoiceStatus::Open,
        payments: Vec::new(),
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    };
    let overdue = Invoice {
        balance: Decimal::new(85_000_000, 2),
        due_at: Due::Date(Date::constant(2026, 3, 7)),
        payment_url: Some("https://pay.example.co/i/INV-0001".to_owned()),
        ..invoice.clone()
    };
    let before = StepInfo {
        name: "courtesy".to_owned(),
        tone: "friendly".to_owned(),
        index: 0,
    };
    let after = StepInfo {
        name: "firm_overdue".to_owned(),
        tone: "firm".to_owned(),
        index: 3,
    };
    let zone = TimeZone::UTC;
    // Every optional block is on in one sample or the other: the early-payment discount (open
    // before the due date), late charges (overdue), the statement of other open invoices (with
    // some left out of the list), so `plazo check` renders each branch of the templates.
    let terms = PaymentTerms {
        early_discount: Some(crate::policy::terms::EarlyDiscount {
            percent: Decimal::new(2, 0),
            days_before_due: 2,
        }),
        late_charges: Some(crate::policy::terms::LateCharges {
            fee_per_step: Some(Decimal::new(15_000, 0)),
            yearly_interest_percent: Some(Decimal::new(24, 0)),
            cap_percent: None,
        }),
        ..PaymentTerms::default()
    };
    let statement = Statement {
        invoices: vec![
            OpenInvoice {
                number: "FV-0950".to_owned(),
                currency,
                balance: Decimal::new(430_000, 0),
                due: Due::Date(Date::constant(2026, 2, 28)),
                payment_url: None,
            },
            OpenInvoice {
                number: "FV-1042".to_owned(),
                currency,
                balance: Decimal::new(2_100_000, 0),
                due: Due::Date(Date::constant(2026, 4, 10)),
                payment_url: None,
            },
        ],
        more: 3,
        totals: vec![(currency, Decimal::new(4_030_000, 0))],
    };
    // Both carry an arrangement, so promise and plan templates are checked too.
    let plan = TermsInput {
        terms: terms.clone(),
        statement,
        arrangement: Some(ArrangementInfo {
            kind: "plan",
            instalment: 2,
            instalments: 3,
            amount: Decimal::new(40_000_000, 2),
            outstanding: Decimal::new(15_000_000, 2),
            due: Due::Date(Date::constant(2026, 3, 25)),
            broken: false,
            channel: Some("phone".to_owned()),
        }),
        ..TermsInput::default()
    };
    let promise = TermsInput {
        terms,
        overdue_steps: 2,
        arrangement: Some(ArrangementInfo {
            kind: "promise",
            instalment: 1,
            instalments: 1,
            amount: Decimal::new(85_000_000, 2),
            outstanding: Decimal::new(85_000_000, 2),
            due: Due::Date(Date::constant(2026, 3, 16)),
            broken: true,
            channel: None,
        }),
        ..TermsInput::default()
    };
    vec![
        message_context_with_terms(
            &client, &invoice, company, &before, locale, &zone, now, &plan,
        ),
        message_context_with_terms(
            &client, &overdue, company, &after, locale, &zone, now, &promise,
        ),
    ]
}
