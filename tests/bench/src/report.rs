//! Results as rows of a table, printed as Markdown and kept in `docs/performance.md`.
//!
//! Each scenario owns one block of the page between `<!-- sop-bench:NAME -->` and
//! `<!-- /sop-bench:NAME -->`, inside the generated section; a run replaces the blocks of the
//! scenarios it ran and leaves the others (and all hand-written text) alone.

/// One figure of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured, e.g. `callback → welcome p99`.
    pub figure: String,
    /// The measured value, with its unit.
    pub value: String,
    /// The target, e.g. `< 50 ms` (empty when none).
    pub target: String,
    /// `met`, `missed` or empty when there is no target.
    pub verdict: String,
}

impl Row {
    /// A row without a target.
    pub fn info(figure: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            figure: figure.into(),
            value: value.into(),
            target: String::new(),
            verdict: String::new(),
        }
    }

    /// A row with a target and whether it was met.
    pub fn target(
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Self {
        Self {
            figure: figure.into(),
            value: value.into(),
            target: target.into(),
            verdict: if met { "met" } else { "**missed**" }.into(),
        }
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    /// Its name on the command line (`welcome`, `idle`, ...).
    pub name: String,
    /// A one-line description of what ran, with the sizes used.
    pub setup: String,
    /// The figures.
    pub rows: Vec<Row>,
    /// Notes worth keeping with the figures (errors seen, what was scaled down).
    pub notes: Vec<String>,
}

/// The run's context: printed above every block.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// UTC time of the run, `2026-11-23 18:10 UTC`.
    pub when: String,
    /// `git describe`-like commit id.
    pub commit: String,
    /// `2 × AMD EPYC …, 23.4 GiB RAM, Linux 6.18`.
    pub machine: String,
    /// Load average when the scenario started.
    pub load: String,
    /// The command that reproduces the block.
    pub command: String,
}

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| figure | value | target | |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            escape(&r.figure),
            escape(&r.value),
            escape(&r.target),
            escape(&r.verdict)
        ));
    }
    out
}

/// The block of one scenario, markers included.
pub fn block(report: &ScenarioReport, ctx: &Context) -> String {
    let mut out = format!(
        "<!-- sop-bench:{name} -->\n### `{name}`: {setup}\n\n\
         {when}, commit `{commit}`, {machine}, load average {load} at the start. Command:\n\
         `{command}`\n\n{table}",
        name = report.name,
        setup = report.setup,
        when = ctx.when,
        commit = ctx.commit,
        machine = ctx.machine,
        load = ctx.load,
        command = ctx.command,
        table = table(&report.rows),
    );
    for n in &report.notes {
        out.push_str(&format!("\n- {n}"));
    }
    if !report.notes.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!("<!-- /sop-bench:{} -->\n", report.name));
    out
}

/// Where generated blocks go when the page has none yet.
pub const SECTION_BEGIN: &str = "<!-- sop-bench:begin -->";
/// End of the generated section.
pub const SECTION_END: &str = "<!-- sop-bench:end -->";

/// `page` with `block` (of scenario `name`) in place: replacing the scenario's old block,
/// or added at the end of the generated section, which is created at the end of the page
/// if missing. Errors when the page's markers are unbalanced.
pub fn upsert(page: &str, name: &str, block: &str) -> Result<String, String> {
    let open = format!("<!-- sop-bench:{name} -->");
    let close = format!("<!-- /sop-bench:{name} -->");
    if let Some(start) = page.find(&open) {
        let end = page[start..]
            .find(&close)
            .map(|i| start + i + close.len())
            .ok_or_else(|| format!("{open} has no {close}"))?;
        // The old block's own trailing newline goes with it.
        let end = if page[end..].starts_with('\n') {
            end + 1
        } else {
            end
        };
        return Ok(format!("{}{block}{}", &page[..start], &page[end..]));
    }
    let mut page = page.to_owned();
    if !page.contains(SECTION_BEGIN) {
        if !page.ends_with('\n') {
            page.push('\n');
        }
        page.push_str(&format!("\n{SECTION_BEGIN}\n{SECTION_END}\n"));
    }
    let at = page
        .find(SECTION_END)
        .ok_or_else(|| format!("{SECTION_BEGIN} has no {SECTION_END}"))?;
    Ok(format!("{}{block}\n{}", &page[..at], &page[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, value: &str) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            setup: "1 s".into(),
            rows: vec![
                Row::target("p99", value, "< 50 ms", value == "1 ms"),
                Row::info("sent", "3"),
            ],
            notes: vec!["scaled down".into()],
        }
    }

    fn ctx() -> Context {
        Context {
            when: "2026-11-23 18:00 UTC".into(),
            commit: "abc1234".into(),
            machine: "2 cores".into(),
            load: "1.0".into(),
            command: "sop-bench welcome".into(),
        }
    }

    #[test]
    fn table_has_a_row_per_figure_and_escapes_pipes() {
        let t = table(&[
            Row::target("a|b", "1 ms", "< 2 ms", true),
            Row::info("n", "7"),
        ]);
        assert_eq!(
            t,
            "| figure | value | target | |\n|---|---|---|---|\n\
             | a\\|b | 1 ms | < 2 ms | met |\n| n | 7 |  |  |\n"
        );
    }

    #[test]
    fn blocks_are_added_then_replaced_and_other_text_is_kept() {
        let page = "# Performance\n\nhand-written\n";
        let a1 = block(&report("a", "1 ms"), &ctx());
        let p1 = upsert(page, "a", &a1).unwrap();
        assert!(p1.starts_with(page));
        assert!(p1.contains(SECTION_BEGIN) && p1.contains(&a1));
        let b = block(&report("b", "9 ms"), &ctx());
        let p2 = upsert(&p1, "b", &b).unwrap();
        assert!(
            p2.find(&a1).unwrap() < p2.find(&b).unwrap(),
            "new blocks go last"
        );
        let a2 = block(&report("a", "2 ms"), &ctx());
        let p3 = upsert(&p2, "a", &a2).unwrap();
        assert!(!p3.contains(&a1) && p3.contains(&a2) && p3.contains(&b));
        assert_eq!(p3.matches("<!-- sop-bench:a -->").count(), 1);
        assert!(p3.contains("**missed**") && p3.contains("- scaled down"));
        // Replacing with the same block is a fixed point.
        assert_eq!(upsert(&p3, "a", &a2).unwrap(), p3);
    }

    #[test]
    fn unbalanced_markers_are_an_error() {
        let e = upsert("<!-- sop-bench:a -->\nno end", "a", "x").unwrap_err();
        assert!(e.contains("/sop-bench:a"), "{e}");
        let e = upsert(SECTION_BEGIN, "b", "x").unwrap_err();
        assert!(e.contains(SECTION_END), "{e}");
    }
}
