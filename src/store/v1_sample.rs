// Deterministic records of every kind a schema-1 store holds, for the migration tests.
//
// This file is `include!`d, not a module of its own: by `store::v1::sample` (unit tests of the
// migration), by tests/migration.rs, and by the program that made
// `tests/fixtures/schema1-store.tar.gz` with the last
// schema-1 release (see tests/fixtures/schema1/README.md). The includer imports the names it uses:
// `BTreeMap`, `Timestamp`, `Date`, `Decimal`, the `domain` types and `InvoiceRefs`,
// `ProviderEvent`, `ProviderEventKind` from `payments`. Change it only together with the
// fixture.

/// Every record the sample store holds, as written.
pub(crate) struct Sample {
    /// Clients (`clients`).
    pub(crate) clients: Vec<Client>,
    /// Invoices (`invoices`); `numbers` indexes their numbers.
    pub(crate) invoices: Vec<Invoice>,
    /// Reminders scheduled after `claim_at` (`reminders` + `due`).
    pub(crate) scheduled: Vec<Reminder>,
    /// A reminder scheduled at or before `claim_at`, then claimed at `claim_at`: stored as
    /// `Claimed`, in `inflight`, no longer in `due`.
    pub(crate) claimed: Reminder,
    /// When the claim ran.
    #[allow(dead_code)] // read by the fixture generator and tests/migration.rs, which include this file
    pub(crate) claim_at: Timestamp,
    /// Timeline lines (`log`, and `log_by_time` in schema 1), in the order logged.
    pub(crate) attempts: Vec<Attempt>,
    /// Processed webhook deliveries (`webhooks`).
    pub(crate) webhooks: Vec<(String, Timestamp)>,
    /// Contacts (`contacts`).
    pub(crate) contacts: Vec<Contact>,
    /// Sent messages (`messages`).
    pub(crate) messages: Vec<SentMessage>,
    /// Client timeline events (`client_log`), in the order logged.
    pub(crate) events: Vec<ContactEvent>,
    /// Payment events (`inbox`); those not in a final state are also in `inbox_queue`.
    pub(crate) inbox: Vec<InboxEntry>,
}

fn sample_ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn sample_dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn sample_cid(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn sample_iid(s: &str) -> InvoiceId {
    InvoiceId::new(s).unwrap()
}

fn sample_s(v: &str) -> String {
    v.to_owned()
}

/// The sample: every kind, optional fields set and unset.
pub(crate) fn sample() -> Sample {
    let (ts, dec, cid, iid, s) = (sample_ts, sample_dec, sample_cid, sample_iid, sample_s);
    let full_client = Client {
        id: cid("c-1"),
        name: s("María Pérez"),
        email: Some(s("maria@example.co")),
        phone: Some(s("+573001234567")),
        whatsapp: Some(s("+573007654321")),
        locale: Some(s("es-CO")),
        timezone: Some(s("America/Bogota")),
        country: Some(s("CO")),
        subdivision: None,
        blocked_times: Vec::new(),
        segment: Some(s("vip")),
        preferred_channels: vec![s("whatsapp"), s("email")],
        tags: vec![s("vip"), s("retail")],
        credits: BTreeMap::from([
            (
                s("COP"),
                Credit {
                    amount: dec("1500.50"),
                    sources: vec![s("overpayment of INV-1001 via stripe:in_1")],
                },
            ),
            (
                s("USD"),
                Credit {
                    amount: dec("0.10"),
                    sources: vec![],
                },
            ),
        ]),
        broken_promises: 3,
        facts: Default::default(),
        created_at: ts("2026-03-01T12:00:00.123456789Z"),
        updated_at: ts("2026-03-02T08:30:00Z"),
    };
    let bare_client = Client {
        id: cid("c-2"),
        name: s("Bare Ltd"),
        email: None,
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: None,
        country: None,
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: BTreeMap::new(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: ts("2026-01-01T00:00:00Z"),
        updated_at: ts("2026-01-01T00:00:00Z"),
    };
    let plan = Arrangement {
        id: 1,
        kind: ArrangementKind::Plan,
        state: ArrangementState::Broken,
        instalments: vec![
            Instalment {
                due: Due::Date(Date::constant(2026, 4, 1)),
                amount: dec("600000.00"),
                paid: dec("600000.00"),
                state: InstalmentState::Paid,
            },
            Instalment {
                due: Due::Instant(ts("2026-05-01T17:00:00Z")),
                amount: dec("650000.00"),
                paid: dec("0"),
                state: InstalmentState::Missed,
            },
        ],
        channel: Some(s("phone")),
        note: Some(s("two halves")),
        received: dec("600000.00"),
        current: 1,
        cursor: Some(2),
        created_at: ts("2026-03-20T10:00:00Z"),
        closed_at: Some(ts("2026-05-04T00:00:00Z")),
        outcome: Some(s("instalment 2 missed")),
        broken_cursor: Some(0),
        broken_done: true,
    };
    let promise = Arrangement {
        id: 2,
        kind: ArrangementKind::Promise,
        state: ArrangementState::Active,
        instalments: vec![Instalment {
            due: Due::Date(Date::constant(2026, 6, 15)),
            amount: dec("650000.00"),
            paid: dec("0.00"),
            state: InstalmentState::Pending,
        }],
        channel: None,
        note: None,
        received: Decimal::ZERO,
        current: 0,
        cursor: None,
        created_at: ts("2026-05-05T10:00:00Z"),
        closed_at: None,
        outcome: None,
        broken_cursor: None,
        broken_done: false,
    };
    let full_invoice = Invoice {
        id: iid("INV-1001"),
        client_id: cid("c-1"),
        number: s("FV-1001"),
        currency: Currency::parse("COP").unwrap(),
        amount: dec("1250000.00"),
        balance: dec("650000.00"),
        issued_at: Some(Date::constant(2026, 2, 13)),
        due_at: Due::Date(Date::constant(2026, 3, 15)),
        payment_url: Some(s("https://pay.example.co/FV-1001")),
        metadata: BTreeMap::from([(s("erp"), s("sap")), (s("branch"), s("norte"))]),
        status: InvoiceStatus::Open,
        payments: vec![Payment {
            amount: dec("600000.00"),
            paid_at: ts("2026-04-01T15:04:05.5Z"),
            reference: s("stripe:in_1"),
            source: s("webhook:stripe"),
            same_as: vec![s("stripe:pi_1"), s("stripe:ch_1")],
        }],
        pause: Some(Pause {
            reason: s("dispute"),
            until: Some(ts("2026-06-01T00:00:00Z")),
            since: ts("2026-05-10T09:00:00Z"),
        }),
        generation: 2,
        cursor: Some(4),
        pending: Some(ReminderId::derive(&iid("INV-1001"), 2, 5)),
        arrangements: vec![plan, promise],
        created_at: ts("2026-02-13T12:00:00.000001Z"),
        updated_at: ts("2026-05-10T09:00:00Z"),
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    };
    let paid_invoice = Invoice {
        id: iid("INV-1002"),
        client_id: cid("c-2"),
        number: s("FV-1002"),
        currency: Currency::parse("USD").unwrap(),
        amount: dec("99.90"),
        balance: dec("0.00"),
        issued_at: None,
        due_at: Due::Instant(ts("2026-03-01T17:00:00Z")),
        payment_url: None,
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Paid,
        payments: vec![Payment {
            amount: dec("99.90"),
            paid_at: ts("2026-03-02T10:00:00Z"),
            reference: s("manual-1"),
            source: s("api"),
            same_as: vec![],
        }],
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: vec![],
        created_at: ts("2026-02-01T00:00:00Z"),
        updated_at: ts("2026-03-02T10:00:00Z"),
        closed_at: Some(ts("2026-03-02T10:00:00Z")),
        followed: None,
        escalation: None,
        exhausted: None,
    };
    let inv1 = iid("INV-1001");
    let scheduled = vec![
        Reminder {
            id: ReminderId::derive(&inv1, 2, 5),
            invoice_id: inv1.clone(),
            client_id: cid("c-1"),
            generation: 2,
            track: Track::Instalment {
                arrangement: 2,
                instalment: 0,
            },
            step_index: 5,
            step_name: s("final_notice"),
            cadence: s("default"),
            planned_at: ts("2026-06-20T14:00:00Z"),
            fire_at: ts("2026-06-20T14:05:00.000000123Z"),
            state: ReminderState::Scheduled,
            attempts: 2,
            channel_index: 1,
            last_error: Some(s("smtp 451: try later")),
            awaiting: None,
            rate_slot: Some(ts("2026-06-20T14:05:00Z")),
        },
        Reminder {
            id: ReminderId::derive(&inv1, 2, 6),
            invoice_id: inv1.clone(),
            client_id: cid("c-1"),
            generation: 2,
            track: Track::Broken { arrangement: 1 },
            step_index: 6,
            step_name: s("broken_promise"),
            cadence: s("default"),
            planned_at: ts("2026-06-21T09:00:00Z"),
            fire_at: ts("2026-06-21T09:00:00Z"),
            state: ReminderState::Scheduled,
            attempts: 0,
            channel_index: 0,
            last_error: None,
            awaiting: None,
            rate_slot: None,
        },
    ];
    let claimed = Reminder {
        id: ReminderId::derive(&inv1, 2, 4),
        invoice_id: inv1.clone(),
        client_id: cid("c-1"),
        generation: 2,
        track: Track::Cadence,
        step_index: 4,
        step_name: s("second_notice"),
        cadence: s("default"),
        planned_at: ts("2026-05-20T14:00:00Z"),
        fire_at: ts("2026-05-20T14:00:00.5Z"),
        state: ReminderState::Scheduled,
        attempts: 0,
        channel_index: 0,
        last_error: None,
        awaiting: None,
        rate_slot: None,
    };
    let attempts = vec![
        Attempt {
            at: ts("2026-02-13T12:00:00.000001Z"),
            invoice_id: inv1.clone(),
            reminder_id: None,
            step: None,
            channel: None,
            recipient: None,
            outcome: AttemptOutcome::Event,
            provider_message_id: None,
            delivery: None,
            detail: Some(s("created")),
        },
        Attempt {
            at: ts("2026-03-20T14:05:00.987654321Z"),
            invoice_id: inv1.clone(),
            reminder_id: Some(ReminderId::derive(&inv1, 2, 3)),
            step: Some(s("first_notice")),
            channel: Some(s("sms")),
            recipient: Some(s("+573001234567")),
            outcome: AttemptOutcome::Sent,
            provider_message_id: Some(s("SM0123456789abcdef")),
            delivery: None,
            detail: None,
        },
        Attempt {
            at: ts("2026-03-20T14:06:00.25Z"),
            invoice_id: inv1.clone(),
            reminder_id: Some(ReminderId::derive(&inv1, 2, 3)),
            step: Some(s("first_notice")),
            channel: Some(s("sms")),
            recipient: Some(s("+573001234567")),
            outcome: AttemptOutcome::Receipt,
            provider_message_id: Some(s("SM0123456789abcdef")),
            delivery: Some(DeliveryState::Delivered),
            detail: Some(s("delivered to the handset")),
        },
        Attempt {
            at: ts("2026-03-02T10:00:00Z"),
            invoice_id: iid("INV-1002"),
            reminder_id: None,
            step: None,
            channel: None,
            recipient: None,
            outcome: AttemptOutcome::Event,
            provider_message_id: None,
            delivery: None,
            detail: Some(s("paid in full")),
        },
    ];
    let contacts = vec![
        Contact {
            address: s("+573001234567"),
            opt_outs: BTreeMap::from([(
                s("sms"),
                OptOut {
                    at: ts("2026-03-01T10:00:00Z"),
                    source: s("keyword BAJA via sms"),
                },
            )]),
            unreachable: BTreeMap::from([(
                s("whatsapp"),
                Unreachable {
                    at: ts("2026-03-02T10:00:00Z"),
                    reason: s("whatsapp error 131026"),
                },
            )]),
            last_inbound: BTreeMap::from([
                (s("sms"), ts("2026-03-03T10:00:00.5Z")),
                (s("whatsapp"), ts("2026-03-04T10:00:00Z")),
            ]),
            clients: [cid("c-1"), cid("c-2")].into_iter().collect(),
        },
        Contact::new("Maria@Example.co"),
    ];
    let messages = vec![
        SentMessage {
            provider: s("twilio"),
            provider_message_id: s("SM0123456789abcdef"),
            reminder_id: ReminderId::derive(&inv1, 2, 3),
            invoice_id: inv1.clone(),
            client_id: cid("c-1"),
            step: s("first_notice"),
            kind: s("sms"),
            channel_index: 0,
            recipient: s("+573001234567"),
            state: DeliveryState::Delivered,
            sent_at: ts("2026-03-20T14:05:00Z"),
            updated_at: ts("2026-03-20T14:06:00.25Z"),
            error: None,
        },
        SentMessage {
            provider: s("whatsapp"),
            provider_message_id: s("wamid.HBgL"),
            reminder_id: ReminderId::derive(&inv1, 2, 2),
            invoice_id: inv1.clone(),
            client_id: cid("c-1"),
            step: s("reminder"),
            kind: s("whatsapp"),
            channel_index: 1,
            recipient: s("+573007654321"),
            state: DeliveryState::Undelivered,
            sent_at: ts("2026-03-10T14:05:00Z"),
            updated_at: ts("2026-03-10T14:06:00Z"),
            error: Some(s("131026: unreachable")),
        },
    ];
    let events = vec![
        ContactEvent {
            at: ts("2026-03-21T09:00:00Z"),
            client_id: cid("c-1"),
            event: ContactEventKind::Inbound,
            channel: s("whatsapp"),
            address: s("+573001234567"),
            text: Some(s("ya pagué 🙏\nmañana envío el soporte")),
            provider_message_id: Some(s("wamid.IN1")),
            detail: Some(s("window opened")),
        },
        ContactEvent {
            at: ts("2026-03-01T10:00:00Z"),
            client_id: cid("c-1"),
            event: ContactEventKind::OptOut,
            channel: s("sms"),
            address: s("+573001234567"),
            text: Some(s("BAJA")),
            provider_message_id: None,
            detail: None,
        },
    ];
    let event = ProviderEvent {
        provider: s("stripe"),
        event_id: s("evt_1"),
        event_type: s("invoice.paid"),
        kind: ProviderEventKind::Paid,
        object_id: s("in_1"),
        amount: Some(dec("600000.00")),
        currency: Some(s("COP")),
        refs: InvoiceRefs {
            metadata: Some(s("INV-1001")),
            client_reference_id: None,
            external_reference: None,
            number: Some(s("FV-1001")),
        },
        occurred_at: Some(ts("2026-04-01T15:04:05Z")),
        same_payment: vec![s("pi_1"), s("ch_1")],
        note: None,
    };
    let inbox = vec![
        InboxEntry {
            key: s("stripe:evt_1"),
            payload: InboxPayload::Event {
                event: Box::new(event.clone()),
            },
            received_at: ts("2026-04-01T15:04:06Z"),
            state: InboxState::Applied,
            attempts: 1,
            next_attempt_at: ts("2026-04-01T15:04:06Z"),
            event: Some(event),
            invoice_id: Some(inv1.clone()),
            detail: None,
            updated_at: ts("2026-04-01T15:04:07Z"),
        },
        InboxEntry {
            key: s("mercadopago:123456"),
            payload: InboxPayload::Fetch {
                provider: s("mercadopago"),
                data_id: s("123456"),
                action: Some(s("payment.updated")),
            },
            received_at: ts("2026-04-02T10:00:00Z"),
            state: InboxState::Received,
            attempts: 2,
            next_attempt_at: ts("2026-04-02T10:05:00.75Z"),
            event: None,
            invoice_id: None,
            detail: Some(s("provider returned 503")),
            updated_at: ts("2026-04-02T10:01:00Z"),
        },
    ];
    Sample {
        clients: vec![full_client, bare_client],
        invoices: vec![full_invoice, paid_invoice],
        scheduled,
        claimed,
        claim_at: ts("2026-05-20T14:00:01Z"),
        attempts,
        webhooks: vec![
            (s("evt_1"), ts("2026-04-01T15:04:06Z")),
            (s("SM0123456789abcdef:delivered"), ts("2026-03-20T14:06:00Z")),
        ],
        contacts,
        messages,
        events,
        inbox,
    }
}
