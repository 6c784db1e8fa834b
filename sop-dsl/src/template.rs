//! The one template environment for playbooks: the checker compiles templates and conditions
//! with it and the engine renders them with it, so what validates is what runs.

use minijinja::{Environment, Value};

/// minijinja's builtins plus `containing`, a test the bundled playbooks use
/// (`text is containing('退')`) that minijinja does not ship.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
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

#[cfg(test)]
mod tests {
    use super::environment;

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
