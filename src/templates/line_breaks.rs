//! `plazo check`'s warning for a text line whose line break is swallowed: the environment
//! trims the newline after a block tag (`trim_blocks`, so that lines holding only `{% if %}`
//! or `{% endfor %}` leave no blank line), which also joins a line that prints something and
//! *ends* with a block tag to the next one. In a list, the next item then runs into the end of
//! this one (a payment link gets the next item glued to it). Ending the tag with `+%}` keeps
//! the line break.

use super::Templates;

/// The 1-based numbers of the lines of `source` that print something, end with a block tag
/// that trims the newline after it (not `+%}` or `-%}`), and are followed by another line.
pub fn swallowed_breaks(source: &str) -> Vec<usize> {
    let lines: Vec<&str> = source.lines().collect();
    let last_with_text = lines.iter().rposition(|l| !l.trim().is_empty());
    lines
        .iter()
        .enumerate()
        .filter(|(i, _)| last_with_text.is_some_and(|last| *i < last))
        .filter(|(_, line)| {
            let line = line.trim_end();
            line.ends_with("%}")
                && !line.ends_with("+%}")
                && !line.ends_with("-%}")
                && prints_something(line)
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// True when `line` has text or `{{ … }}` outside its `{% … %}` and `{# … #}` tags.
fn prints_something(line: &str) -> bool {
    let mut rest = line;
    loop {
        let next_tag = ["{%", "{#"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min();
        let Some((at, open)) = next_tag else {
            return !rest.trim().is_empty();
        };
        if !rest[..at].trim().is_empty() {
            return true;
        }
        let close = if open == "{%" { "%}" } else { "#}" };
        match rest[at + 2..].find(close) {
            Some(end) => rest = &rest[at + 2 + end + 2..],
            // An unclosed tag: the template would not have loaded; nothing to say here.
            None => return false,
        }
    }
}

impl Templates {
    /// One warning per plain-text line (`.txt`, `.short.txt` and partials; not subjects, which
    /// are one line, nor HTML, where line breaks do not show) whose line break is swallowed:
    /// see the module docs.
    pub fn line_break_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, template) in self.inner.env.templates() {
            if !name.ends_with(".txt") || name.ends_with(".subject.txt") {
                continue;
            }
            for line in swallowed_breaks(template.source()) {
                out.push(format!(
                    "{}:{line}: this line ends with a block tag, which removes its line break, so \
                     the next line is joined to it; end the tag with `+%}}` (for example \
                     `{{% endif +%}}`) to keep the break",
                    self.inner.dir.join(name).display()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printing_line_ending_in_a_block_tag_is_found() {
        let src = "{% for o in items %}\n\
                   - {{ o.n }}{% if o.url %} pay: {{ o.url }}{% endif %}\n\
                   {% endfor %}\n\
                   Total{% if more %} and more{% endif %}\n\
                   Bye\n";
        assert_eq!(swallowed_breaks(src), vec![2, 4]);
    }

    #[test]
    fn tag_only_lines_kept_breaks_and_the_last_line_are_not() {
        let src = "{% if a %}\n\
                   {% if b %}{% endif %}\n\
                   {# a note #}{% set x = 1 %}\n\
                   - {{ x }}{% endif +%}\n\
                   - {{ x }}{%- endif -%}\n\
                   text {{ x }}\n\
                   Last{% endif %}\n\n";
        assert_eq!(swallowed_breaks(src), Vec::<usize>::new());
        assert_eq!(swallowed_breaks(""), Vec::<usize>::new());
        assert!(prints_something("{% if a %}x{% endif %}"));
        assert!(prints_something("{{ a }}{% endif %}"));
        assert!(!prints_something("  {% if a %} {# c #} {% endif %} "));
    }

    #[test]
    fn the_shipped_templates_keep_every_line_break() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        let t = Templates::load(&dir, "es-CO").unwrap();
        assert_eq!(t.line_break_warnings(), Vec::<String>::new());
    }

    #[test]
    fn a_swallowed_break_in_a_partial_is_reported_with_its_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let es = dir.path().join("es");
        std::fs::create_dir_all(&es).unwrap();
        std::fs::write(
            es.join("hello.txt"),
            "Hola\n{% include \"es/_list.txt\" %}\n",
        )
        .unwrap();
        std::fs::write(
            es.join("_list.txt"),
            "{% for i in [1, 2] %}\n- {{ i }}{% if i %} ok{% endif %}\n{% endfor %}\n",
        )
        .unwrap();
        std::fs::write(
            es.join("hello.subject.txt"),
            "Hi{% if 1 %} you{% endif %}\n",
        )
        .unwrap();
        let t = Templates::load(dir.path(), "es").unwrap();
        let warnings = t.line_break_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&format!("{}:2:", es.join("_list.txt").display())),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("+%}"), "{}", warnings[0]);
    }
}
