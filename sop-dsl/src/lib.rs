//! The sop playbook language: model, loader, checker and diagnostics.
//!
//! Loading is two passes that never fail fast: [`parse`] turns YAML text into a spanned tree
//! and [`check`] turns the tree into a typed [`Playbook`]; each reports every problem it finds
//! as a [`Diagnostic`] with a stable code, a byte span and often a suggestion.
//!
//! ```
//! let src = "id: hello\nversion: 1\ntriggers:\n  - manual: true\nsteps:\n  - id: pause\n    wiat: 5m\n";
//! let loaded = sop_dsl::load(src, None);
//! assert!(loaded.has_errors());
//! let text = sop_dsl::render::render_human(&loaded.diagnostics[0], "hello.yaml", src);
//! assert!(text.starts_with("hello.yaml:7:5: error[SOP0010]: unknown step kind `wiat`"));
//! ```

pub mod catalog;
mod check;
pub mod code;
pub mod cron;
pub mod diagnostic;
pub mod model;
pub mod render;
pub mod syntax;
pub mod template;

pub use catalog::Catalog;
pub use check::{VARIABLES, check};
pub use code::Code;
pub use diagnostic::{Diagnostic, Severity};
pub use model::Playbook;
pub use syntax::{Ast, parse};

/// A loaded playbook: the checked model and every diagnostic, in source order.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub playbook: Playbook,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks a playbook.
pub fn load(src: &str, catalog: Option<&Catalog>) -> Loaded {
    let (ast, mut diagnostics) = parse(src);
    let (playbook, more) = if ast.root.is_none() && !diagnostics.is_empty() {
        (check::empty_playbook(), Vec::new())
    } else {
        check(&ast, catalog)
    };
    diagnostics.extend(more);
    diagnostics.sort_by_key(|d| (d.primary.span.start, d.code));
    Loaded {
        playbook,
        diagnostics,
    }
}

/// The JSON Schema of the playbook format, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Playbook)).unwrap_or_default()
}
