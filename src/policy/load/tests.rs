//! Tests for loading the policy: the shipped file, and one test per kind of error, each checking
//! the exact `file:line:col: field:` prefix.

use std::path::Path;

use jiff::civil::time;

use super::*;
use crate::policy::{OnExhausted, StepAction};

/// Line numbers in the assertions below refer to this text.
const BASE: &str = r#"default_segment = "standard"
templates_dir = "templates"

[defaults]
timezone = "America/Bogota"
locale = "es-CO"
currency = "COP"
send_at = "09:00"
window = { days = "mon-fri", from = "08:00", to = "19:00" }

[company]
name = "Ferretería El Tornillo S.A.S."
email = "cartera@example.co"

[segments.standard]
cadence = "standard"

[segments.late_payers]
cadence = "standard"
window = { days = ["mon", "sat"], from = "08:00", to = "18:00" }

[[cadences.standard.steps]]
name = "courtesy"
offset = "-3d"
channels = ["email"]
template = "courtesy"
tone = "friendly"

[[cadences.standard.steps]]
name = "due_today"
offset = "0d"
at = "08:30"
channels = ["email", "sms"]
template = "due_today"
tone = "friendly"

[[cadences.standard.steps]]
name = "firm"
offset = "+10d"
channels = ["email"]
template = "firm_overdue"
tone = "firm"
"#;

/// The origin used for messages; relative, as ops would type it (tests run in the crate root).
const ORIGIN: &str = "config/policy.toml";

fn parse(text: &str) -> Result<LoadedPolicy, PolicyError> {
    parse_policy(text, Path::new(ORIGIN))
}

/// BASE with `from` replaced (exactly once) by `to`, which must fail; returns the message.
fn fail(from: &str, to: &str) -> (PolicyError, String) {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "{from:?} must occur once in BASE"
    );
    let err = parse(&BASE.replace(from, to)).unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

fn assert_prefix(msg: &str, prefix: &str) {
    assert!(
        msg.starts_with(prefix),
        "expected prefix {prefix:?}\n     got {msg:?}"
    );
}

#[test]
fn base_policy_loads() {
    let loaded = parse(BASE).unwrap();
    let p = &loaded.policy;
    assert_eq!(p.default_segment, "standard");
    assert_eq!(p.defaults.timezone_name, "America/Bogota");
    assert_eq!(p.defaults.currency.code(), "COP");
    assert_eq!(p.defaults.send_at, time(9, 0, 0, 0));
    assert_eq!(
        p.defaults.window.days,
        [true, true, true, true, true, false, false]
    );
    let late = &p.segments["late_payers"];
    assert_eq!(
        late.window.as_ref().unwrap().days,
        [true, false, false, false, false, true, false]
    );
    let steps = &p.cadences["standard"].steps;
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1].offset, Offset::Days(0));
    assert_eq!(steps[1].at, Some(time(8, 30, 0, 0)));
    assert_eq!(steps[1].channels, vec!["email", "sms"]);
    assert_eq!(p.company.email.as_deref(), Some("cartera@example.co"));
    assert_eq!(p.company.phone, None);
    assert_eq!(loaded.templates.default_locale(), "es-CO");
}

#[test]
fn shipped_policy_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml");
    let loaded = load_policy(&path).unwrap_or_else(|e| panic!("{e}"));
    let p = &loaded.policy;
    assert_eq!(p.default_segment, "standard");
    assert_eq!(p.defaults.locale, "es-CO");
    assert_eq!(p.segments["late_payers"].cadence, "close_follow_up");
    let offsets = |c: &str| {
        p.cadences[c]
            .steps
            .iter()
            .map(|s| s.offset.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offsets("standard"),
        ["-3d", "+0d", "+3d", "+10d", "+30d", "+60d"]
    );
    assert_eq!(
        offsets("close_follow_up"),
        [
            "-5d", "-1d", "+0d", "+1d", "+5d", "+10d", "+15d", "+30d", "+45d"
        ]
    );
    // The four segments of the collection practice, chosen by rule in this order.
    assert_eq!(
        p.rules.order().collect::<Vec<_>>(),
        ["dificil_cobro", "late_payers", "puntual"],
        "rules are tried in file order"
    );
    assert_eq!(
        offsets("dificil_cobro"),
        ["-1d", "+0d", "+1d", "+4d", "+5d", "+15d", "+30d"]
    );
    assert_eq!(p.write_off_after_days, Some(360));
    // Both end by handing the invoice to the shipped partner; late payers are chosen by rule.
    for c in ["standard", "close_follow_up"] {
        assert_eq!(
            p.cadences[c].steps.last().unwrap().action,
            StepAction::HandOff("cobranzas_norte".to_owned())
        );
    }
    assert!(p.rules.rule_of("late_payers").is_some());
    let tones: Vec<&str> = p.cadences["standard"]
        .steps
        .iter()
        .map(|s| s.tone.as_str())
        .collect();
    // The hand-off step sends no message: no tone.
    assert_eq!(
        tones,
        ["friendly", "friendly", "friendly", "firm", "final", ""]
    );
    for cadence in p.cadences.values() {
        for step in cadence
            .steps
            .iter()
            .filter(|s| s.action == StepAction::Remind)
        {
            for locale in ["es", "en", "es-MX", "fr"] {
                loaded
                    .templates
                    .require(&step.template, locale, "email")
                    .unwrap();
            }
        }
    }
    assert_eq!(p.arrangements.promise_cadence.as_deref(), Some("promise"));
    assert_eq!(p.arrangements.plan_cadence.as_deref(), Some("instalments"));
    assert_eq!(
        p.arrangements.broken_cadence.as_deref(),
        Some("promise_broken")
    );
    let company = &p.company;
    assert!(loaded.templates.check_all(company).is_empty());
}

#[test]
fn syntax_error_points_at_the_line() {
    let (err, msg) = fail("[company]", "[company");
    assert!(matches!(err, PolicyError::Syntax { .. }), "{msg}");
    assert_prefix(&msg, "config/policy.toml:11:9: ");
    assert!(msg.contains("unclosed table"), "{msg}");
}

#[test]
fn unknown_field_lists_valid_fields() {
    let (err, msg) = fail("tone = \"firm\"", "tonne = \"firm\"");
    assert!(matches!(err, PolicyError::Syntax { .. }), "{msg}");
    assert_prefix(
        &msg,
        "config/policy.toml:42:1: cadences.standard.steps[2].tonne: unknown field `tonne`",
    );
    assert!(
        msg.contains(
            "expected one of `name`, `offset`, `at`, `action`, `channels`, `template`, `tone`"
        ),
        "{msg}"
    );
    assert_eq!(err.field(), Some("cadences.standard.steps[2].tonne"));

    let (_, msg) = fail("timezone = ", "time_zone = ");
    assert_prefix(
        &msg,
        "config/policy.toml:5:1: defaults.time_zone: unknown field `time_zone`",
    );
    assert!(msg.contains("`timezone`"), "{msg}");

    let (_, msg) = fail(
        "templates_dir = \"templates\"",
        "template_dir = \"templates\"",
    );
    assert_prefix(
        &msg,
        "config/policy.toml:2:1: template_dir: unknown field `template_dir`",
    );
}

#[test]
fn top_level_key_under_a_table_gets_a_hint() {
    let moved = BASE
        .replacen("default_segment = \"standard\"\n", "", 1)
        .replace(
            "[segments.late_payers]\n",
            "[segments.late_payers]\ndefault_segment = \"standard\"\n",
        );
    let msg = parse(&moved).unwrap_err().to_string();
    assert_prefix(
        &msg,
        "config/policy.toml:18:1: segments.late_payers.default_segment: unknown field `default_segment`",
    );
    assert!(
        msg.contains("move it above the first [table] header"),
        "{msg}"
    );
}

#[test]
fn loaded_policy_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<LoadedPolicy>();
}

#[test]
fn wrong_type_and_missing_field() {
    let (_, msg) = fail("offset = \"+10d\"", "offset = 10");
    assert_prefix(
        &msg,
        "config/policy.toml:39:10: cadences.standard.steps[2].offset: invalid type: integer `10`, expected a string",
    );
    let (_, msg) = fail("template = \"courtesy\"\n", "");
    assert_prefix(
        &msg,
        "config/policy.toml:23:8: cadences.standard.steps[0].template: a remind step needs `template`, like template = \"courtesy\"",
    );
    let (_, msg) = fail("window = { days = \"mon-fri\"", "window = { days = 5");
    assert_prefix(
        &msg,
        "config/policy.toml:9:19: defaults.window.days: invalid type: integer `5`",
    );
}

#[test]
fn bad_offset() {
    let (err, msg) = fail("offset = \"+10d\"", "offset = \"+1x\"");
    assert_eq!(
        msg,
        "config/policy.toml:39:10: cadences.standard.steps[2].offset: \"+1x\" is not an offset; write a signed number followed by d, h or m, like \"-3d\", \"+2h\", \"-90m\" (at most 3650 days)"
    );
    let loc = err.location().unwrap();
    assert_eq!((loc.line, loc.column), (Some(39), Some(10)));
    assert_eq!(err.field(), Some("cadences.standard.steps[2].offset"));
    for bad in [
        "\"\"",
        "\"d\"",
        "\"+d\"",
        "\"1.5d\"",
        "\"3\"",
        "\"++3d\"",
        "\"99999d\"",
        "\"-3 d\"",
    ] {
        let (_, msg) = fail("offset = \"+10d\"", &format!("offset = {bad}"));
        assert_prefix(
            &msg,
            "config/policy.toml:39:10: cadences.standard.steps[2].offset: ",
        );
    }
}

#[test]
fn offsets_must_increase() {
    let (_, msg) = fail("offset = \"+10d\"", "offset = \"0d\"");
    assert_prefix(
        &msg,
        "config/policy.toml:39:10: cadences.standard.steps[2].offset: offset +0d does not come after the previous step \"due_today\" (+0d)",
    );
    // Minutes compare approximately against days: -90m is before 0d.
    let (_, msg) = fail("offset = \"+10d\"", "offset = \"-90m\"");
    assert_prefix(
        &msg,
        "config/policy.toml:39:10: cadences.standard.steps[2].offset: offset -90m does not come after",
    );
    // +2h after 0d is fine.
    let ok = BASE.replace("offset = \"+10d\"", "offset = \"+2h\"");
    assert_eq!(
        parse(&ok).unwrap().policy.cadences["standard"].steps[2].offset,
        Offset::Minutes(120)
    );
}

#[test]
fn duplicate_step_names() {
    let (_, msg) = fail("name = \"firm\"", "name = \"courtesy\"");
    assert_prefix(
        &msg,
        "config/policy.toml:38:8: cadences.standard.steps[2].name: step name \"courtesy\" is already used in cadence \"standard\"",
    );
}

#[test]
fn unknown_channel() {
    let (_, msg) = fail("[\"email\", \"sms\"]", "[\"email\", \"fax\"]");
    assert_eq!(
        msg,
        "config/policy.toml:33:22: cadences.standard.steps[1].channels[1]: \"fax\" is not a channel; valid channels are \"email\", \"sms\", \"whatsapp\", \"webhook\""
    );
    let (_, msg) = fail("[\"email\", \"sms\"]", "[]");
    assert_prefix(
        &msg,
        "config/policy.toml:33:12: cadences.standard.steps[1].channels: no channels given",
    );
    let (_, msg) = fail("[\"email\", \"sms\"]", "[\"email\", \"email\"]");
    assert_prefix(
        &msg,
        "config/policy.toml:33:22: cadences.standard.steps[1].channels[1]: \"email\" is listed twice",
    );
}

#[test]
fn unknown_cadence_in_segment() {
    let (_, msg) = fail(
        "[segments.late_payers]\ncadence = \"standard\"",
        "[segments.late_payers]\ncadence = \"strict\"",
    );
    assert_eq!(
        msg,
        "config/policy.toml:19:11: segments.late_payers.cadence: there is no cadence \"strict\"; defined cadences are \"standard\""
    );
}

#[test]
fn unknown_default_segment() {
    let (_, msg) = fail(
        "default_segment = \"standard\"",
        "default_segment = \"vip\"",
    );
    assert_eq!(
        msg,
        "config/policy.toml:1:19: default_segment: there is no segment \"vip\"; defined segments are \"late_payers\", \"standard\""
    );
}

#[test]
fn bad_timezone() {
    let (_, msg) = fail("\"America/Bogota\"", "\"America/Bogot\"");
    assert_prefix(
        &msg,
        "config/policy.toml:5:12: defaults.timezone: \"America/Bogot\" is not an IANA time zone; write a tz database name like \"America/Bogota\"",
    );
}

#[test]
fn bad_currency() {
    let (_, msg) = fail("currency = \"COP\"", "currency = \"PESOS\"");
    assert_prefix(
        &msg,
        "config/policy.toml:7:12: defaults.currency: unknown currency \"PESOS\": use an ISO 4217 code such as COP",
    );
}

#[test]
fn bad_locale_and_times_and_windows() {
    let (_, msg) = fail("locale = \"es-CO\"", "locale = \"spanish!\"");
    assert_prefix(
        &msg,
        "config/policy.toml:6:10: defaults.locale: \"spanish!\" is not a locale",
    );
    let (_, msg) = fail("send_at = \"09:00\"", "send_at = \"9am\"");
    assert_prefix(
        &msg,
        "config/policy.toml:8:11: defaults.send_at: \"9am\" is not a time of day; write 24-hour \"HH:MM\"",
    );
    let (_, msg) = fail("send_at = \"09:00\"", "send_at = \"24:00\"");
    assert_prefix(&msg, "config/policy.toml:8:11: defaults.send_at: ");
    let (_, msg) = fail("at = \"08:30\"", "at = \"8:30\"");
    assert_prefix(
        &msg,
        "config/policy.toml:32:6: cadences.standard.steps[1].at: \"8:30\" is not a time of day",
    );
    // "24:00" ends the window at the end of the day; elsewhere it is not a time.
    let text = BASE.replacen("to = \"19:00\"", "to = \"24:00\"", 1);
    let p = parse(&text).unwrap().policy;
    assert_eq!(p.defaults.window.end, jiff::civil::Time::MAX);
    let (_, msg) = fail("to = \"19:00\"", "to = \"07:00\"");
    assert_prefix(
        &msg,
        "config/policy.toml:9:51: defaults.window.to: the window ends (\"07:00\") before it starts (\"08:00\")",
    );
    let (_, msg) = fail("days = \"mon-fri\"", "days = \"weekdays\"");
    assert_prefix(
        &msg,
        "config/policy.toml:9:19: defaults.window.days: \"weekdays\" is not a set of days; write \"mon-fri\"",
    );
    let (_, msg) = fail("days = \"mon-fri\"", "days = \"fri-mon\"");
    assert_prefix(
        &msg,
        "config/policy.toml:9:19: defaults.window.days: \"fri-mon\" runs backwards",
    );
    let (_, msg) = fail("days = [\"mon\", \"sat\"]", "days = []");
    assert_prefix(
        &msg,
        "config/policy.toml:20:19: segments.late_payers.window.days: no days given; at least one day is needed",
    );
    let (_, msg) = fail("days = [\"mon\", \"sat\"]", "days = [\"mon\", \"sab\"]");
    assert_prefix(
        &msg,
        "config/policy.toml:20:19: segments.late_payers.window.days: \"sab\" is not a day",
    );
    // `at` with an exact offset makes no sense.
    let (_, msg) = fail("offset = \"0d\"", "offset = \"+1m\"");
    assert_prefix(
        &msg,
        "config/policy.toml:32:6: cadences.standard.steps[1].at: `at` only applies to day offsets",
    );
    // Ranges and daily parse.
    let daily = BASE.replace("days = \"mon-fri\"", "days = \"daily\"");
    assert_eq!(
        parse(&daily).unwrap().policy.defaults.window.days,
        [true; 7]
    );
    let range = BASE.replace("days = \"mon-fri\"", "days = \"tue-sat\"");
    assert_eq!(
        parse(&range).unwrap().policy.defaults.window.days,
        [false, true, true, true, true, true, false]
    );
}

#[test]
fn missing_template() {
    let (_, msg) = fail("template = \"firm_overdue\"", "template = \"firm_overdu\"");
    assert_prefix(
        &msg,
        "config/policy.toml:41:12: cadences.standard.steps[2].template: no template \"firm_overdu\" for locale \"es-CO\": none of config/templates/es-CO/firm_overdu.txt, config/templates/es/firm_overdu.txt exists; templates available: courtesy, due_today, due_tomorrow, final_notice, firm_overdue, friendly_overdue, instalment_reminder, promise_broken, promise_reminder, thank_you (needed by channel \"email\")",
    );
    assert!(msg.ends_with("(needed by channel \"email\")"), "{msg}");
    let (_, msg) = fail(
        "template = \"firm_overdue\"",
        "template = \"../etc/passwd\"",
    );
    assert_prefix(
        &msg,
        "config/policy.toml:41:12: cadences.standard.steps[2].template: \"../etc/passwd\" is not a valid template name",
    );
}

#[test]
fn email_template_missing_a_part_and_missing_templates_dir() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl/es");
    std::fs::create_dir_all(&tpl).unwrap();
    for name in ["courtesy", "due_today", "firm_overdue"] {
        std::fs::write(tpl.join(format!("{name}.txt")), "Hola {{ client.name }}").unwrap();
    }
    let text = BASE.replace("templates_dir = \"templates\"", "templates_dir = \"tpl\"");
    let origin = dir.path().join("policy.toml");
    let err = parse_policy(&text, &origin).unwrap_err();
    let msg = err.to_string();
    assert_prefix(
        &msg,
        &format!(
            "{}:26:12: cadences.standard.steps[0].template: {} is missing: email messages need NAME.subject.txt, NAME.txt and NAME.html",
            origin.display(),
            tpl.join("courtesy.subject.txt").display()
        ),
    );
    // SMS-only steps need only the text.
    let sms = text
        .replace("channels = [\"email\"]", "channels = [\"sms\"]")
        .replace("[\"email\", \"sms\"]", "[\"sms\"]");
    assert!(parse_policy(&sms, &origin).is_ok());

    // A templates_dir that does not exist.
    let missing = BASE.replace(
        "templates_dir = \"templates\"",
        "templates_dir = \"nowhere\"",
    );
    let msg = parse_policy(&missing, &origin).unwrap_err().to_string();
    assert_prefix(
        &msg,
        &format!(
            "{}:2:17: templates_dir: templates directory ",
            origin.display()
        ),
    );
    assert!(msg.contains("does not exist"), "{msg}");

    // A template that does not compile names its own file and line.
    std::fs::write(tpl.join("due_today.txt"), "Hola\n{{ client.name ").unwrap();
    let err = parse_policy(&sms, &origin).unwrap_err();
    assert!(matches!(err, PolicyError::Templates(_)), "{err}");
    let msg = err.to_string();
    assert_prefix(
        &msg,
        &format!("{}:2: syntax error", tpl.join("due_today.txt").display()),
    );
}

#[test]
fn sections_must_not_be_empty_and_files_must_exist() {
    let no_cadences = BASE.split("[[cadences").next().unwrap();
    let msg = parse(no_cadences).unwrap_err().to_string();
    assert_prefix(
        &msg,
        "config/policy.toml:1:1: cadences: no cadences defined",
    );

    let err = load_policy(Path::new("config/nope.toml")).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }));
    assert_prefix(
        &err.to_string(),
        "config/nope.toml: cannot read the policy file: ",
    );
}

#[test]
fn offsets_parse() {
    assert_eq!(parse_offset("-3d"), Some(Offset::Days(-3)));
    assert_eq!(parse_offset("0d"), Some(Offset::Days(0)));
    assert_eq!(parse_offset("+1d"), Some(Offset::Days(1)));
    assert_eq!(parse_offset("+2h"), Some(Offset::Minutes(120)));
    assert_eq!(parse_offset("-90m"), Some(Offset::Minutes(-90)));
    assert_eq!(parse_offset("15d"), Some(Offset::Days(15)));
    for bad in [
        "",
        "+",
        "d",
        "3",
        "3x",
        "+-3d",
        "3.5d",
        "99999999999999999999d",
        "-3D",
        "3dd",
        "٣d",
    ] {
        assert_eq!(parse_offset(bad), None, "{bad:?}");
    }
}

#[test]
fn promises_plans_and_the_cadence_anchor() {
    use crate::policy::terms::CadenceAnchor;
    let text = format!(
        "{BASE}\n[promises]\ncadence = \"standard\"\ngrace = \"2d\"\nbroken_cadence = \"standard\"\nmax_days = 10\n\n[plans]\ngrace = \"12h\"\nmax_instalments = 3\n\n[payments]\ncadence_anchor = \"last_payment\"\n"
    );
    let p = parse(&text).unwrap().policy;
    let a = &p.arrangements;
    assert_eq!(a.promise_cadence.as_deref(), Some("standard"));
    assert_eq!(a.broken_cadence.as_deref(), Some("standard"));
    assert_eq!(a.promise_grace, Offset::Days(2));
    assert_eq!(a.promise_max_days, 10);
    assert_eq!(a.plan_cadence, None);
    assert_eq!(a.plan_grace, Offset::Minutes(720));
    assert_eq!(a.plan_max_instalments, 3);
    assert_eq!(p.terms.anchor, CadenceAnchor::LastPayment);
    // Defaults without the sections.
    let d = parse(BASE).unwrap().policy;
    assert_eq!(d.arrangements.promise_grace, Offset::Days(1));
    assert_eq!(d.arrangements.plan_max_instalments, 24);
    assert_eq!(d.terms.anchor, CadenceAnchor::DueDate);

    let bad = |extra: &str, prefix: &str| {
        let msg = parse(&format!("{BASE}\n{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(prefix), "expected {prefix:?} in {msg:?}");
    };
    bad(
        "[promises]\ncadence = \"promesa\"",
        "promises.cadence: there is no cadence \"promesa\"; define it as [[cadences.promesa.steps]]",
    );
    bad(
        "[promises]\nbroken_cadence = \"nope\"",
        "promises.broken_cadence: there is no cadence \"nope\"",
    );
    bad(
        "[plans]\ngrace = \"-1d\"",
        "plans.grace: \"-1d\" is not a grace period",
    );
    bad(
        "[plans]\ngrace = \"soon\"",
        "plans.grace: \"soon\" is not a grace period",
    );
    bad(
        "[promises]\nmax_days = 400",
        "promises.max_days: 400 is out of range; write 1 to 365",
    );
    bad(
        "[plans]\nmax_instalments = 0",
        "plans.max_instalments: 0 is out of range; write 1 to 120",
    );
    bad(
        "[payments]\ncadence_anchor = \"payment\"",
        "payments.cadence_anchor: \"payment\" is not an anchor",
    );
    bad("[promises]\ncadense = \"x\"", "cadense");
}

#[test]
fn a_day_listed_twice_is_refused() {
    let (_, msg) = fail("[\"mon\", \"sat\"]", "[\"mon\", \"sat\", \"mon\"]");
    assert_prefix(
        &msg,
        "config/policy.toml:20:19: segments.late_payers.window.days: \"mon\" is listed twice",
    );
}

#[test]
fn whole_table_errors_point_at_the_table() {
    let text = format!("{BASE}\n[channels.fax]\nmax_segments = 2\n");
    let line = text.lines().position(|l| l == "[channels.fax]").unwrap() + 1;
    let msg = parse(&text).unwrap_err().to_string();
    assert_prefix(
        &msg,
        &format!("config/policy.toml:{line}:11: channels.fax: \"fax\" is not a channel kind"),
    );
}

#[test]
fn segment_rules_compile_in_file_order_and_errors_point_into_the_rule() {
    let with_rule = |rule: &str| {
        BASE.replace(
            "[segments.late_payers]\ncadence = \"standard\"\n",
            &format!("[segments.late_payers]\ncadence = \"standard\"\nwhen = {rule}\n"),
        )
    };
    let loaded = parse(&with_rule("\"client.facts.broken_promises >= 2\"")).unwrap();
    assert!(!loaded.policy.rules.is_empty());

    // An unknown field: line 20, the column of the field inside the quoted rule.
    let msg = parse(&with_rule(
        "\"client.facts.broken_promises >= 2 or client.facts.nmae > 1\"",
    ))
    .unwrap_err()
    .to_string();
    assert_prefix(
        &msg,
        "config/policy.toml:20:46: segments.late_payers.when: rule unknown field `client.facts.nmae`; rules can read client.facts.paid_invoices",
    );
    // Also inside a literal (single-quoted) TOML string.
    let msg = parse(&with_rule("'client.facts.nmae > 1'"))
        .unwrap_err()
        .to_string();
    assert_prefix(
        &msg,
        "config/policy.toml:20:9: segments.late_payers.when: rule unknown field",
    );
    // A syntax error points into the rule, not at the key.
    let msg = parse(&with_rule("\"(client.facts.broken_promises >= 2\""))
        .unwrap_err()
        .to_string();
    assert_prefix(&msg, "config/policy.toml:20:");
    assert!(
        msg.contains("segments.late_payers.when: rule is not a valid expression"),
        "{msg}"
    );
    let col: usize = msg.split(':').nth(2).unwrap().parse().unwrap();
    assert!(col > 9, "{msg}");
}

#[test]
fn facts_window_is_bounded() {
    let loaded = parse(&format!("{BASE}\n[facts]\nlast_paid = 24\n")).unwrap();
    assert_eq!(loaded.policy.facts.last_paid, 24);
    assert_eq!(
        parse(BASE).unwrap().policy.facts.last_paid,
        crate::domain::DEFAULT_LAST_PAID
    );
    let lines = BASE.lines().count();
    for bad in ["0", "101", "-3"] {
        let msg = parse(&format!("{BASE}\n[facts]\nlast_paid = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert_prefix(
            &msg,
            &format!(
                "config/policy.toml:{}:13: facts.last_paid: {bad} is out of range; use 1 to 100",
                lines + 3
            ),
        );
    }
}

#[test]
fn step_actions_on_exhausted_and_partners_are_checked() {
    let partner = "\n[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n";
    let hand_off_step = "\n[[cadences.standard.steps]]\nname = \"to_agency\"\noffset = \"+60d\"\naction = \"hand_off:cobranzas_norte\"\n";
    let loaded = parse(&format!("{BASE}{hand_off_step}{partner}")).unwrap();
    let steps = &loaded.policy.cadences["standard"].steps;
    assert_eq!(
        steps.last().unwrap().action,
        StepAction::HandOff("cobranzas_norte".to_owned())
    );
    assert!(steps.last().unwrap().channels.is_empty());
    assert_eq!(
        loaded.policy.partners["cobranzas_norte"].name,
        "Cobranzas del Norte S.A.S."
    );
    // Plain "hand_off" means the only partner.
    let plain = hand_off_step.replace("hand_off:cobranzas_norte", "hand_off");
    let loaded = parse(&format!("{BASE}{plain}{partner}")).unwrap();
    assert_eq!(
        loaded.policy.cadences["standard"]
            .steps
            .last()
            .unwrap()
            .action,
        StepAction::HandOff("cobranzas_norte".to_owned())
    );

    let line = BASE.lines().count() + 5;
    // An unknown partner.
    let msg = parse(&format!(
        "{BASE}{}{partner}",
        hand_off_step.replace("cobranzas_norte", "abogados")
    ))
    .unwrap_err()
    .to_string();
    assert_prefix(
        &msg,
        &format!(
            "config/policy.toml:{line}:10: cadences.standard.steps[3].action: there is no partner \"abogados\"; defined partners are \"cobranzas_norte\""
        ),
    );
    // No partners at all.
    let msg = parse(&format!("{BASE}{hand_off_step}"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("no [partners.*] are defined; add [partners.cobranzas_norte]"),
        "{msg}"
    );
    // A call task is an action; "task:x" and a typo are named.
    let task = parse(&format!(
        "{BASE}{}{partner}",
        hand_off_step.replace("hand_off:cobranzas_norte", "task")
    ))
    .unwrap();
    let steps = &task.policy.cadences["standard"].steps;
    assert_eq!(steps.last().unwrap().action, StepAction::Task);
    for (bad, says) in [
        ("task:ana", "\"task\" takes nothing after it"),
        (
            "handoff",
            "\"handoff\" is not valid; use \"remind\", \"task\", \"hand_off:PARTNER\" or \"write_off\"",
        ),
    ] {
        let msg = parse(&format!(
            "{BASE}{}{partner}",
            hand_off_step.replace("hand_off:cobranzas_norte", bad)
        ))
        .unwrap_err()
        .to_string();
        assert!(msg.contains(says), "{msg}");
    }
    // An action step sends nothing: it takes no channels.
    let with_channels = hand_off_step.replace("action =", "channels = [\"email\"]\naction =");
    let msg = parse(&format!("{BASE}{with_channels}{partner}"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cadences.standard.steps[3].channels: a step with action hand_off:cobranzas_norte sends no message, so it takes no `channels`"),
        "{msg}"
    );
    // A remind step without a template says which key is missing.
    let msg = parse(&BASE.replace("template = \"courtesy\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cadences.standard.steps[0].template: a remind step needs `template`"),
        "{msg}"
    );

    // on_exhausted.
    let exhausted = |v: &str| {
        BASE.replacen(
            "[[cadences.standard.steps]]",
            &format!("[cadences.standard]\non_exhausted = \"{v}\"\n\n[[cadences.standard.steps]]"),
            1,
        )
    };
    let loaded = parse(&format!("{}{partner}", exhausted("write_off"))).unwrap();
    assert_eq!(
        loaded.policy.cadences["standard"].on_exhausted,
        OnExhausted::WriteOff
    );
    let loaded = parse(&format!(
        "{}{partner}",
        exhausted("hand_off:cobranzas_norte")
    ))
    .unwrap();
    assert_eq!(
        loaded.policy.cadences["standard"].on_exhausted,
        OnExhausted::HandOff("cobranzas_norte".to_owned())
    );
    let loaded = parse(&exhausted("task")).unwrap();
    assert_eq!(
        loaded.policy.cadences["standard"].on_exhausted,
        OnExhausted::Task
    );
    let msg = parse(&exhausted("remind")).unwrap_err().to_string();
    assert!(
        msg.contains("cadences.standard.on_exhausted: \"remind\" is not valid; use \"nothing\", \"task\", \"hand_off:PARTNER\" or \"write_off\""),
        "{msg}"
    );
    // Partner names are checked.
    let msg = parse(&format!("{BASE}\n[partners.x]\nname = \"\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("partners.x.name: must be 1 to 200 characters"),
        "{msg}"
    );
}

#[test]
fn call_steps_tasks_and_inbound_are_checked_with_their_location() {
    // channels = ["call"] is a task step; call with anything else is refused.
    let call = "\n[[cadences.standard.steps]]\nname = \"call\"\noffset = \"+20d\"\nchannels = [\"call\"]\n";
    let loaded = parse(&format!("{BASE}{call}")).unwrap();
    let last = loaded.policy.cadences["standard"]
        .steps
        .last()
        .unwrap()
        .clone();
    assert_eq!(last.action, StepAction::Task);
    assert!(last.channels.is_empty());
    let line = BASE.lines().count() + 5;
    let msg = parse(&format!(
        "{BASE}{}",
        call.replace("[\"call\"]", "[\"sms\", \"call\"]")
    ))
    .unwrap_err()
    .to_string();
    assert_prefix(
        &msg,
        &format!(
            "config/policy.toml:{line}:12: cadences.standard.steps[3].channels: \"call\" is a task for a person"
        ),
    );
    let msg = parse(&format!("{BASE}{call}template = \"x\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("a call step sends no message, so it takes no `template`"),
        "{msg}"
    );

    // Defaults.
    let p = &loaded.policy;
    assert_eq!(p.tasks.claim_timeout, jiff::SignedDuration::from_hours(2));
    assert_eq!(p.tasks.no_answer_attempts, 3);
    assert_eq!(
        p.tasks.no_answer_spacing,
        jiff::SignedDuration::from_hours(24)
    );
    assert_eq!(
        p.tasks.priority.source(),
        "invoice.balance * invoice.days_overdue"
    );
    assert!(p.inbound.says_paid("Ya pagué!").is_some());
    assert_eq!(
        p.inbound.other_replies,
        crate::policy::OtherReplies::Nothing
    );

    // Set.
    let tasks = "\n[tasks]\npriority = \"invoice.balance * (1 + client.facts.broken_promises)\"\nclaim_timeout = \"30m\"\nno_answer = { attempts = 5, spacing = \"4h\" }\n\n[inbound]\nsays_paid = [\"Pago hecho\"]\nother_replies = \"task\"\n";
    let loaded = parse(&format!("{BASE}{tasks}")).unwrap();
    let p = &loaded.policy;
    assert_eq!(p.tasks.claim_timeout, jiff::SignedDuration::from_mins(30));
    assert_eq!(p.tasks.no_answer_attempts, 5);
    assert_eq!(
        p.tasks.no_answer_spacing,
        jiff::SignedDuration::from_hours(4)
    );
    assert!(
        p.inbound.says_paid("ya pagué").is_none(),
        "the list replaces the default"
    );
    assert!(p.inbound.says_paid("PAGO HECHO ayer").is_some());
    assert_eq!(p.inbound.other_replies, crate::policy::OtherReplies::Task);

    // Bad values name file:line:col and the field.
    let base_lines = BASE.lines().count();
    for (bad, at, says) in [
        (
            "\n[tasks]\npriority = \"invoice.balanse * 2\"\n",
            format!(
                "{}:13: tasks.priority: priority unknown field `invoice.balanse`",
                base_lines + 3
            ),
            "",
        ),
        (
            "\n[tasks]\nclaim_timeout = \"forever\"\n",
            format!(
                "{}:17: tasks.claim_timeout: \"forever\" is not a duration between 1m and 7d",
                base_lines + 3
            ),
            "",
        ),
        (
            "\n[tasks]\nno_answer = { attempts = 0, spacing = \"1d\" }\n",
            format!(
                "{}:26: tasks.no_answer.attempts: 0 is out of range; write 1 to 20",
                base_lines + 3
            ),
            "",
        ),
        (
            "\n[tasks]\nno_answer = { attempts = 2, spacing = \"0m\" }\n",
            format!(
                "{}:39: tasks.no_answer.spacing: \"0m\" is not a duration between 1m and 30d",
                base_lines + 3
            ),
            "",
        ),
        (
            "\n[inbound]\nsays_paid = [\"ya pagué\", \"!!\"]\n",
            format!(
                "{}:13: inbound.says_paid[1]: \"!!\" is not a phrase",
                base_lines + 3
            ),
            "",
        ),
        (
            "\n[inbound]\nother_replies = \"review\"\n",
            format!(
                "{}:17: inbound.other_replies: \"review\" is not valid; use \"nothing\" or \"task\"",
                base_lines + 3
            ),
            "",
        ),
    ] {
        let msg = parse(&format!("{BASE}{bad}")).unwrap_err().to_string();
        assert_prefix(&msg, &format!("config/policy.toml:{at}{says}"));
    }
}

#[test]
fn thank_you_names_a_template_and_channels_each_error_located() {
    // Absent: no thank-you.
    assert_eq!(parse(BASE).unwrap().policy.terms.thank_you, None);
    let with = |value: &str| format!("{BASE}\n[payments]\nthank_you = {value}\n");
    let p = parse(&with(
        r#"{ template = "thank_you", channels = ["email", "whatsapp", "sms"] }"#,
    ))
    .unwrap()
    .policy;
    let t = p.terms.thank_you.unwrap();
    assert_eq!(t.template, "thank_you");
    assert_eq!(t.channels, vec!["email", "whatsapp", "sms"]);

    // The line of `thank_you = ...` in the text built by `with`.
    let line = BASE.lines().count() + 3;
    // `at`: the value the error points at (its last occurrence), for the column.
    let bad = |value: &str, at: &str, rest: &str| {
        let col = "thank_you = ".len() + value.rfind(at).unwrap() + 1;
        let msg = parse(&with(value)).unwrap_err().to_string();
        assert_prefix(&msg, &format!("config/policy.toml:{line}:{col}: {rest}"));
    };
    bad(
        r#"{ template = "gracias", channels = ["email"] }"#,
        "\"gracias\"",
        "payments.thank_you.template: no template \"gracias\" for locale \"es-CO\"",
    );
    bad(
        r#"{ template = "thank_you", channels = ["email", "fax"] }"#,
        "\"fax\"",
        "payments.thank_you.channels[1]: \"fax\" is not a channel; valid channels are",
    );
    bad(
        r#"{ template = "thank_you", channels = ["sms", "sms"] }"#,
        "\"sms\"",
        "payments.thank_you.channels[1]: \"sms\" is listed twice",
    );
    bad(
        r#"{ template = "thank_you", channels = [] }"#,
        "[]",
        "payments.thank_you.channels: no channels given",
    );
    bad(
        r#"{ template = "../x", channels = ["email"] }"#,
        "\"../x\"",
        "payments.thank_you.template: \"../x\" is not a valid template name",
    );
    // A template without the parts a channel needs: email wants the subject and HTML too.
    let msg = parse(&with(r#"{ template = "nope", channels = ["sms"] }"#))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no template \"nope\""), "{msg}");
    let msg = parse(&with(r#"{ template = "thank_you" }"#))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("channels"), "{msg}");
}

#[test]
fn max_late_defaults_to_every_message_step_and_is_bounded() {
    let text = BASE.replacen(
        "send_at = \"09:00\"\n",
        "send_at = \"09:00\"\nmax_late = \"1d\"\n",
        1,
    );
    let text = text.replacen(
        "template = \"firm_overdue\"\n",
        "template = \"firm_overdue\"\nmax_late = \"12h\"\n",
        1,
    );
    let p = parse(&text).unwrap().policy;
    let late: Vec<Option<i64>> = p.cadences["standard"]
        .steps
        .iter()
        .map(|s| s.max_late.map(|d| d.as_hours()))
        .collect();
    assert_eq!(late, [Some(24), Some(24), Some(12)]);
    // Without it, however late.
    let p = parse(BASE).unwrap().policy;
    assert!(
        p.cadences["standard"]
            .steps
            .iter()
            .all(|s| s.max_late.is_none())
    );
    for bad in ["40d", "0h", "30m", "1x", ""] {
        let text = BASE.replacen(
            "send_at = \"09:00\"\n",
            &format!("send_at = \"09:00\"\nmax_late = \"{bad}\"\n"),
            1,
        );
        let msg = parse(&text).unwrap_err().to_string();
        assert_prefix(
            &msg,
            &format!(
                "config/policy.toml:9:12: defaults.max_late: \"{bad}\" is not a lateness between 1h and 30d"
            ),
        );
    }
}

#[test]
fn max_late_on_a_step_that_sends_nothing_is_refused() {
    let hand_off = BASE.replacen(
        "template = \"firm_overdue\"\ntone = \"firm\"\n",
        "template = \"firm_overdue\"\ntone = \"firm\"\n\n[[cadences.standard.steps]]\nname = \"to_legal\"\noffset = \"+30d\"\naction = \"write_off\"\nmax_late = \"1d\"\n",
        1,
    );
    let msg = parse(&hand_off).unwrap_err().to_string();
    assert!(
        msg.contains("cadences.standard.steps[3].max_late: a step with action write_off sends no message, so it takes no `max_late`"),
        "{msg}"
    );
    let call = BASE.replacen(
        "template = \"firm_overdue\"\ntone = \"firm\"\n",
        "template = \"firm_overdue\"\ntone = \"firm\"\n\n[[cadences.standard.steps]]\nname = \"call\"\noffset = \"+30d\"\nchannels = [\"call\"]\nmax_late = \"1d\"\n",
        1,
    );
    let msg = parse(&call).unwrap_err().to_string();
    assert!(
        msg.contains("cadences.standard.steps[3].max_late: a call step sends no message, so it takes no `max_late`"),
        "{msg}"
    );
}
