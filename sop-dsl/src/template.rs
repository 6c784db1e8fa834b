//! The one template environment for playbooks: the checker compiles templates and conditions
//! with it and the engine renders them with it, so what validates is what runs.

use minijinja::{Environment, ErrorKind, Value};

/// The work one render or evaluation may do, in minijinja fuel: about one unit per
/// instruction and per 64 bytes of data made. A playbook's message needs a few hundred; this
/// stops a loop over `range(100000)` inside another, or a string of many megabytes, with an
/// error instead of holding a runtime lane (and memory) for minutes.
pub const FUEL: u64 = 200_000;

/// How deep macros and `include`s may call each other. minijinja's own limit (500) can
/// overflow a 2 MiB thread stack in debug builds before it is reached.
pub const RECURSION_LIMIT: usize = 64;

/// minijinja's builtins plus `containing`, a test the bundled playbooks use
/// (`text is containing('退')`) that minijinja does not ship. Every render is bounded by
/// [`FUEL`] and [`RECURSION_LIMIT`].
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.add_test("containing", |haystack: Value, needle: Value| -> bool {
        match (haystack.as_str(), needle.as_str()) {
            (Some(h), Some(n)) => h.contains(n),
            _ => haystack
                .try_iter()
                .is_ok_and(|mut items| items.any(|item| item == needle)),
        }
    });
    env
}

/// A template error for operators: the limits above are named as such.
pub fn describe_error(error: &minijinja::Error) -> String {
    match error.kind() {
        ErrorKind::OutOfFuel => format!(
            "the template does more work than allowed (a loop too long or an output too large; \
             limit {FUEL} fuel): {error}"
        ),
        _ => error.to_string(),
    }
}

/// The start of a template, for error messages: a huge template is not repeated whole.
pub fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 120;
    match text.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_error, environment, excerpt};

    fn render_in_small_stack(template: &'static str) -> Result<String, String> {
        // A tokio worker's stack (2 MiB): recursion must end with an error, not an abort.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                environment()
                    .render_str(template, minijinja::context! {})
                    .map_err(|e| describe_error(&e))
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn nested_loops_and_huge_strings_run_out_of_fuel() {
        let loops = render_in_small_stack(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(loops.contains("more work than allowed"), "{loops}");
        let huge = render_in_small_stack("{{ 'x' * 90000000 }}").unwrap_err();
        assert!(huge.contains("more work than allowed"), "{huge}");
        let expression = environment()
            .compile_expression("range(100000) | map('string') | join(',') | length")
            .unwrap()
            .eval(minijinja::context! {})
            .unwrap_err();
        assert!(describe_error(&expression).contains("more work than allowed"));
        // An ordinary message is far below the limit.
        let items: Vec<u32> = (0..500).collect();
        let ok = environment()
            .render_str(
                "{% for i in items %}{{ i }}. {{ name | default('亲') }}\n{% endfor %}",
                minijinja::context! { items },
            )
            .unwrap();
        assert_eq!(ok.lines().count(), 500);
    }

    #[test]
    fn recursive_macros_stop_with_an_error() {
        let err = render_in_small_stack("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
            .unwrap_err();
        assert!(err.contains("recursion"), "{err}");
    }

    #[test]
    fn excerpts_cut_long_templates_on_a_char_boundary() {
        assert_eq!(excerpt("短"), "短");
        let long = "好".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.starts_with(&"好".repeat(120)));
        assert!(cut.ends_with("… (3000 bytes)"), "{cut}");
    }

    #[test]
    fn containing_matches_substrings_and_list_items() {
        let env = environment();
        let text = env.compile_expression("text is containing('退')").unwrap();
        let yes = text
            .eval(minijinja::context! { text => "我要退货" })
            .unwrap();
        let no = text.eval(minijinja::context! { text => "你好" }).unwrap();
        assert!(yes.is_true());
        assert!(!no.is_true());
        let tags = env.compile_expression("tags is containing('vip')").unwrap();
        let listed = tags
            .eval(minijinja::context! { tags => vec!["vip", "new"] })
            .unwrap();
        assert!(listed.is_true());
    }
}
