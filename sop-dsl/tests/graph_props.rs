//! Random step graphs: the checker's loop and reachability verdicts agree with a brute-force
//! model of the same semantics.

use proptest::prelude::*;
use sop_dsl::{Code, load};

#[derive(Debug, Clone)]
enum Kind {
    Wait,
    Tag,
    Goto(usize),
    If(usize, Option<usize>),
    End,
}

fn kind(n: usize) -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Wait),
        Just(Kind::Tag),
        (0..n).prop_map(Kind::Goto),
        (0..n, prop::option::of(0..n)).prop_map(|(t, e)| Kind::If(t, e)),
        Just(Kind::End),
    ]
}

fn program() -> impl Strategy<Value = Vec<Kind>> {
    (1usize..10).prop_flat_map(|n| prop::collection::vec(kind(n), n))
}

fn yaml(steps: &[Kind]) -> String {
    let mut src = String::from("id: t\nversion: 1\ntriggers:\n  - manual: true\nsteps:\n");
    for (i, k) in steps.iter().enumerate() {
        src.push_str(&format!("  - id: s{i}\n"));
        src.push_str(&match k {
            Kind::Wait => "    wait: 1h\n".to_string(),
            Kind::Tag => "    add_tags: x\n".to_string(),
            Kind::Goto(t) => format!("    goto: s{t}\n"),
            Kind::If(t, e) => {
                let mut s = format!("    if: \"contact.vip\"\n    then: s{t}\n");
                if let Some(e) = e {
                    s.push_str(&format!("    else: s{e}\n"));
                }
                s
            }
            Kind::End => "    end: completed\n".to_string(),
        });
    }
    src
}

fn successors(steps: &[Kind], i: usize) -> Vec<usize> {
    let next = (i + 1 < steps.len()).then_some(i + 1);
    match &steps[i] {
        Kind::Wait | Kind::Tag => next.into_iter().collect(),
        Kind::Goto(t) => vec![*t],
        Kind::If(t, e) => std::iter::once(Some(*t))
            .chain([e.or(next)])
            .flatten()
            .collect(),
        Kind::End => vec![],
    }
}

fn reach(steps: &[Kind], from: usize, through: impl Fn(usize) -> bool) -> Vec<bool> {
    let mut seen = vec![false; steps.len()];
    let mut stack: Vec<usize> = successors(steps, from)
        .into_iter()
        .filter(|s| through(*s))
        .collect();
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(successors(steps, n).into_iter().filter(|s| through(*s)));
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn verdicts_match_a_brute_force_model(steps in program()) {
        let loaded = load(&yaml(&steps), None);
        let codes: Vec<Code> = loaded.diagnostics.iter().map(|d| d.code).collect();

        let waits = |i: usize| matches!(steps[i], Kind::Wait);
        let spins = (0..steps.len()).any(|i| !waits(i) && reach(&steps, i, |s| !waits(s))[i]);
        prop_assert_eq!(codes.contains(&Code::LoopWithoutWait), spins, "{:?}", steps);

        let mut reached = reach(&steps, 0, |_| true);
        reached[0] = true;
        let unreachable = reached.iter().any(|r| !r);
        prop_assert_eq!(codes.contains(&Code::UnreachableStep), unreachable, "{:?}", steps);
    }
}
