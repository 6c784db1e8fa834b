//! Checking: a spanned tree to a typed [`Playbook`], reporting every problem at once.
//!
//! The checker never stops at the first problem. Parts that cannot be read are left out of the
//! returned playbook (or given their default), so the playbook is only meaningful when no
//! diagnostic is an error.

mod flow;
mod graph;
mod playbook;
mod plugins;
mod read;
mod step;
mod template;

pub use template::VARIABLES;

use crate::catalog::Catalog;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::model::{AudienceTarget, Playbook, QuietHours};
use crate::syntax::Ast;

/// Checks a parsed playbook. With a catalog, plugin actions and events are checked against it;
/// without one, a single note says so.
pub fn check(ast: &Ast, catalog: Option<&Catalog>) -> (Playbook, Vec<Diagnostic>) {
    let mut ctx = Ctx {
        diagnostics: Vec::new(),
        catalog,
        env: crate::template::environment(),
        graph: graph::Graph::default(),
        event_uses: Vec::new(),
        has_wait_for: false,
        error_uses: Vec::new(),
        has_on_error: false,
        first_plugin_use: None,
        target: AudienceTarget::Contacts,
        quiet_hours: None,
        tenant: None,
    };
    let playbook = match &ast.root {
        Some(root) => ctx.playbook(root),
        None => {
            ctx.push(
                Diagnostic::new(Code::EmptyDocument, 0..0, "the playbook is empty")
                    .with_help("a playbook needs at least `id`, `version`, `triggers` and `steps`"),
            );
            empty_playbook()
        }
    };
    if ast.root.is_some() {
        ctx.graph.check(&mut ctx.diagnostics);
        ctx.warn_error_without_on_error();
        if catalog.is_none()
            && let Some(span) = ctx.first_plugin_use.clone()
        {
            ctx.push(
                Diagnostic::new(
                    Code::CatalogSkipped,
                    span,
                    "plugin actions and events were not checked: no plugin manifests given",
                )
                .with_help("pass `--plugins DIR` to check names and parameters"),
            );
        }
    }
    let mut diagnostics = ctx.diagnostics;
    diagnostics.sort_by_key(|d| (d.primary.span.start, d.code));
    (playbook, diagnostics)
}

pub(crate) fn empty_playbook() -> Playbook {
    Playbook {
        id: String::new(),
        version: 0,
        name: None,
        description: None,
        tenant: None,
        owner: None,
        timezone: Default::default(),
        triggers: Vec::new(),
        audience: None,
        entry: Default::default(),
        flow: None,
        goals: Vec::new(),
        policy: Default::default(),
        steps: Vec::new(),
    }
}

/// State shared by the checks of one playbook.
pub(crate) struct Ctx<'a> {
    diagnostics: Vec<Diagnostic>,
    catalog: Option<&'a Catalog>,
    env: minijinja::Environment<'static>,
    graph: graph::Graph,
    /// Where templates and conditions use `event`, in reading order.
    event_uses: Vec<std::ops::Range<usize>>,
    /// Whether any step is a `wait_for` (which gives later steps an `event`).
    has_wait_for: bool,
    /// Where templates and conditions use `error`, in reading order.
    error_uses: Vec<std::ops::Range<usize>>,
    /// Whether any action step has `on_error` (the only place `error` gets a value).
    has_on_error: bool,
    /// Where the first plugin action or event is named, for the "skipped" note.
    first_plugin_use: Option<std::ops::Range<usize>>,
    /// The playbook's audience target and quiet hours, for checks on actions.
    target: AudienceTarget,
    quiet_hours: Option<QuietHours>,
    /// The playbook's tenant, for checks of action steps' `account`.
    tenant: Option<String>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("diagnostics", &self.diagnostics.len())
            .finish_non_exhaustive()
    }
}
