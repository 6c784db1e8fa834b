//! The step graph: duplicate ids, jumps to unknown steps, unreachable steps and loops that
//! never wait.
//!
//! Built while reading steps, independently of the typed model, so that a step whose body has
//! errors still takes part (as a step that simply continues).

use std::collections::HashMap;
use std::ops::Range;

use crate::code::Code;
use crate::diagnostic::{Diagnostic, suggestion};

/// Where a step may go next.
#[derive(Debug, Clone)]
pub(crate) enum Edge {
    /// The next step in its list, or where the list continues when it runs out.
    Follow,
    /// A step named by id.
    Ref(String, Range<usize>),
    /// The first step of a nested list (or, if empty, where that list continues).
    List(usize),
}

/// Where a list of steps continues after its last step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cont {
    /// The run ends.
    Exit,
    /// After the step holding the list.
    After(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct GraphStep {
    pub id: Option<String>,
    /// The id value, or the step, for messages.
    pub span: Range<usize>,
    /// Waits for time, an event or a human: a loop through it cannot spin.
    pub waits: bool,
    pub edges: Vec<Edge>,
    list: usize,
    position: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    steps: Vec<GraphStep>,
    lists: Vec<(Vec<usize>, Cont)>,
}

impl Graph {
    pub fn new_list(&mut self, cont: Cont) -> usize {
        self.lists.push((Vec::new(), cont));
        self.lists.len() - 1
    }

    /// Reserves a step at the end of `list`; fill it with [`Graph::set`].
    pub fn add_step(&mut self, list: usize, span: Range<usize>) -> usize {
        let index = self.steps.len();
        let position = self.lists[list].0.len();
        self.lists[list].0.push(index);
        self.steps.push(GraphStep {
            id: None,
            span,
            waits: true,
            edges: vec![Edge::Follow],
            list,
            position,
        });
        index
    }

    pub fn set(
        &mut self,
        index: usize,
        id: Option<(String, Range<usize>)>,
        waits: bool,
        edges: Vec<Edge>,
    ) {
        let step = &mut self.steps[index];
        if let Some((id, span)) = id {
            step.id = Some(id);
            step.span = span;
        }
        step.waits = waits;
        step.edges = edges;
    }

    /// The step after `index` when it continues, or `None` when the run ends.
    fn follow(&self, mut index: usize) -> Option<usize> {
        loop {
            let step = &self.steps[index];
            let (items, cont) = &self.lists[step.list];
            if let Some(next) = items.get(step.position + 1) {
                return Some(*next);
            }
            match cont {
                Cont::Exit => return None,
                Cont::After(parent) => index = *parent,
            }
        }
    }

    fn list_entry(&self, list: usize) -> Option<usize> {
        let (items, cont) = &self.lists[list];
        match (items.first(), cont) {
            (Some(first), _) => Some(*first),
            (None, Cont::Exit) => None,
            (None, Cont::After(parent)) => self.follow(*parent),
        }
    }

    pub fn check(&self, diagnostics: &mut Vec<Diagnostic>) {
        let ids = self.unique_ids(diagnostics);
        let successors = self.successors(&ids, diagnostics);
        let Some(start) = self.lists.first().and_then(|(items, _)| items.first()) else {
            return;
        };
        self.unreachable(*start, &successors, diagnostics);
        self.spinning_loops(&successors, diagnostics);
    }

    fn unique_ids(&self, diagnostics: &mut Vec<Diagnostic>) -> HashMap<&str, usize> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (index, step) in self.steps.iter().enumerate() {
            let Some(id) = &step.id else { continue };
            if let Some(first) = ids.get(id.as_str()) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateStepId,
                        step.span.clone(),
                        format!("step id `{id}` is used twice"),
                    )
                    .with_secondary(self.steps[*first].span.clone(), "first used here")
                    .with_help("step ids must be unique in the playbook, nested steps included"),
                );
            } else {
                ids.insert(id, index);
            }
        }
        ids
    }

    fn successors(
        &self,
        ids: &HashMap<&str, usize>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<Vec<usize>> {
        let mut known: Vec<&str> = ids.keys().copied().collect();
        known.sort_unstable();
        self.steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                step.edges
                    .iter()
                    .filter_map(|edge| match edge {
                        Edge::Follow => self.follow(index),
                        Edge::List(list) => self.list_entry(*list),
                        Edge::Ref(name, span) => {
                            let target = ids.get(name.as_str()).copied();
                            if target.is_none() {
                                let mut d = Diagnostic::new(
                                    Code::UnknownStep,
                                    span.clone(),
                                    format!("no step has the id `{name}`"),
                                );
                                if let Some(s) = suggestion(name, known.iter().copied()) {
                                    d = d.with_label(s);
                                }
                                diagnostics.push(d);
                            }
                            target
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn unreachable(
        &self,
        start: usize,
        successors: &[Vec<usize>],
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut seen = vec![false; self.steps.len()];
        mark(start, successors, &mut seen);
        let unreached: Vec<usize> = (0..self.steps.len()).filter(|i| !seen[*i]).collect();
        // Report the first step of each unreachable region, not every step in it.
        let mut has_unreached_pred = vec![false; self.steps.len()];
        for &u in &unreached {
            for &s in &successors[u] {
                if s != u {
                    has_unreached_pred[s] = true;
                }
            }
        }
        // Nested steps are entered from their parent, which is not an edge for an empty branch.
        let mut heads: Vec<usize> = unreached
            .iter()
            .copied()
            .filter(|u| !has_unreached_pred[*u])
            .collect();
        for &head in &heads {
            mark(head, successors, &mut seen);
        }
        for &u in &unreached {
            if !seen[u] {
                heads.push(u);
                mark(u, successors, &mut seen);
            }
        }
        heads.sort_unstable();
        for head in heads {
            let step = &self.steps[head];
            let name = step
                .id
                .as_deref()
                .map_or("this step".to_string(), |id| format!("step `{id}`"));
            diagnostics.push(
                Diagnostic::new(
                    Code::UnreachableStep,
                    step.span.clone(),
                    format!("{name} can never run"),
                )
                .with_help(
                    "no step leads here: it follows an `end` or `goto`, and nothing jumps to it",
                ),
            );
        }
    }

    /// Cycles made only of steps that do not wait would run forever in an instant.
    fn spinning_loops(&self, successors: &[Vec<usize>], diagnostics: &mut Vec<Diagnostic>) {
        let active: Vec<Vec<usize>> = successors
            .iter()
            .enumerate()
            .map(|(i, next)| {
                if self.steps[i].waits {
                    Vec::new()
                } else {
                    next.iter()
                        .copied()
                        .filter(|n| !self.steps[*n].waits)
                        .collect()
                }
            })
            .collect();
        for component in strongly_connected(&active) {
            let cyclic = component.len() > 1 || active[component[0]].contains(&component[0]);
            if !cyclic {
                continue;
            }
            let mut members = component.clone();
            members.sort_unstable();
            let first = &self.steps[members[0]];
            let names: Vec<String> = members
                .iter()
                .map(|m| self.steps[*m].id.clone().unwrap_or_else(|| "?".into()))
                .collect();
            let mut d = Diagnostic::new(
                Code::LoopWithoutWait,
                first.span.clone(),
                match names.as_slice() {
                    [one] => format!(
                        "step `{one}` leads back to itself with no wait: a run would spin forever"
                    ),
                    _ => format!(
                        "steps {} form a loop with no wait: a run would spin forever",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            )
            .with_help(
                "put a `wait`, `wait_until`, `wait_for` or `handoff` inside the loop, or end it",
            );
            for m in members.iter().skip(1).take(3) {
                d = d.with_secondary(self.steps[*m].span.clone(), "part of the loop");
            }
            diagnostics.push(d);
        }
    }
}

fn mark(start: usize, successors: &[Vec<usize>], seen: &mut [bool]) {
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        stack.extend(successors[n].iter().copied().filter(|s| !seen[*s]));
    }
}

/// Strongly connected components (iterative Tarjan, so deep graphs cannot overflow the stack).
fn strongly_connected(graph: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = graph.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next_index = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = graph[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_components() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 alone
        let g = vec![vec![1], vec![2], vec![0], vec![3], vec![]];
        let mut comps: Vec<Vec<usize>> = strongly_connected(&g)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        comps.sort();
        assert_eq!(comps, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let g: Vec<Vec<usize>> = (0..200_000)
            .map(|i| {
                if i + 1 < 200_000 {
                    vec![i + 1]
                } else {
                    vec![0]
                }
            })
            .collect();
        assert_eq!(strongly_connected(&g).len(), 1);
    }
}
