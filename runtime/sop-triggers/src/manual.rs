//! Manual and API starts: a batch audience given by ids or by the playbook's audience.

use serde::{Deserialize, Serialize};
use sop_dsl::model::{AudienceTarget, Trigger};
use sop_engine::{StartCause, Subject, SubjectKind};
use sop_store::{ContactKey, GroupKey, Store, StoreError};

use crate::audience::AudiencePager;
use crate::deployed::{Deployed, Enrollment};
use crate::error::TriggerError;

/// The most ids one manual start may name; larger batches start by audience or in parts.
pub const MAX_MANUAL_IDS: usize = 100_000;

/// Who a manual start is for. Ids are contact ids, or group ids for a playbook whose audience
/// targets groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualAudience {
    /// These subjects (duplicates count once). The audience's tags and `where` are not applied
    /// here: the runtime's entry decision checks them, and reports who was left out and why.
    Ids(Vec<String>),
    /// Everyone the playbook's audience admits.
    Audience,
}

/// One page of a manual start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManualPage {
    pub enrollments: Vec<Enrollment>,
    /// Ids that were not enrolled, with the reason (unknown id, group of another account).
    pub rejected: Vec<(String, String)>,
}

/// Pages through a manual start's candidates (cause `StartCause::Manual { by }`).
#[derive(Debug)]
pub struct ManualPager<'s> {
    inner: Inner<'s>,
}

#[derive(Debug)]
enum Inner<'s> {
    Ids {
        store: &'s dyn Store,
        deployed: Deployed<'s>,
        groups: bool,
        ids: std::vec::IntoIter<String>,
        by: String,
    },
    // Boxed: the pager is much larger than the id list.
    Audience(Box<AudiencePager<'s>>),
}

impl<'s> ManualPager<'s> {
    /// Fails if the playbook has no `manual: true` trigger, if more than [`MAX_MANUAL_IDS`]
    /// ids (or an empty id) are given, or if the audience condition does not compile.
    pub fn new(
        store: &'s dyn Store,
        deployed: Deployed<'s>,
        audience: ManualAudience,
        by: &str,
    ) -> Result<ManualPager<'s>, TriggerError> {
        let manual = deployed
            .playbook
            .triggers
            .iter()
            .any(|t| matches!(t, Trigger::Manual(m) if m.manual));
        if !manual {
            return Err(TriggerError::NoManualTrigger {
                playbook: deployed.id.to_owned(),
            });
        }
        let cause = StartCause::Manual { by: by.to_owned() };
        let inner = match audience {
            ManualAudience::Audience => {
                Inner::Audience(Box::new(AudiencePager::new(store, deployed, cause, None)?))
            }
            ManualAudience::Ids(mut ids) => {
                if ids.len() > MAX_MANUAL_IDS {
                    return Err(TriggerError::TooManyIds {
                        given: ids.len(),
                        limit: MAX_MANUAL_IDS,
                    });
                }
                if ids.iter().any(|id| id.is_empty()) {
                    return Err(TriggerError::EmptyId);
                }
                ids.sort_unstable();
                ids.dedup();
                let groups = deployed
                    .playbook
                    .audience
                    .as_ref()
                    .is_some_and(|a| a.target == AudienceTarget::Groups);
                Inner::Ids {
                    store,
                    deployed,
                    groups,
                    ids: ids.into_iter(),
                    by: by.to_owned(),
                }
            }
        };
        Ok(ManualPager { inner })
    }

    /// Up to `limit` ids handled (enrolled or rejected); empty once exhausted.
    pub fn next_page(&mut self, limit: usize) -> Result<ManualPage, StoreError> {
        let limit = limit.max(1);
        match &mut self.inner {
            Inner::Audience(pager) => Ok(ManualPage {
                enrollments: pager.next_page(limit)?,
                rejected: Vec::new(),
            }),
            Inner::Ids {
                store,
                deployed,
                groups,
                ids,
                by,
            } => {
                let mut page = ManualPage::default();
                for id in ids.by_ref().take(limit) {
                    let reason = if *groups {
                        match store.group(&GroupKey::new(deployed.tenant, id.as_str()))? {
                            None => Some("no such group".to_owned()),
                            Some(g) if g.account != deployed.account => Some(format!(
                                "the group belongs to account `{}`, the playbook acts through `{}`",
                                g.account, deployed.account
                            )),
                            Some(_) => None,
                        }
                    } else {
                        store
                            .contact(&ContactKey::new(deployed.tenant, id.as_str()))?
                            .is_none()
                            .then(|| "no such contact".to_owned())
                    };
                    match reason {
                        Some(reason) => page.rejected.push((id, reason)),
                        None => page.enrollments.push(Enrollment {
                            playbook: deployed.id.to_owned(),
                            version: deployed.version,
                            tenant: deployed.tenant.to_owned(),
                            subject: Subject {
                                kind: if *groups {
                                    SubjectKind::Group
                                } else {
                                    SubjectKind::Contact
                                },
                                id,
                                account: deployed.account.to_owned(),
                            },
                            cause: StartCause::Manual { by: by.clone() },
                            fired_at: None,
                        }),
                    }
                }
                Ok(page)
            }
        }
    }

    /// No further ids or audience members.
    pub fn is_exhausted(&self) -> bool {
        match &self.inner {
            Inner::Audience(pager) => pager.is_exhausted(),
            Inner::Ids { ids, .. } => ids.len() == 0,
        }
    }
}
