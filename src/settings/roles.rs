//! A node's roles (`node.roles`): which work a cluster node takes. Parsed once when the settings
//! are loaded; every part of the node asks [`NodeRoles::runs`].

use std::collections::BTreeSet;
use std::fmt;

/// One kind of work a node can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeRole {
    /// The HTTP API (`/api/v1/*`, the live streams, the dashboard) and the outbox sweep.
    Api,
    /// The loan actors (the saga's steps), their timers and the outbox sweep.
    Loans,
    /// The credit bureau's calls.
    Credit,
    /// The appraiser's calls.
    Appraisal,
    /// The applicants' notifications.
    Notifier,
}

impl NodeRole {
    pub const ALL: [NodeRole; 5] =
        [NodeRole::Api, NodeRole::Loans, NodeRole::Credit, NodeRole::Appraisal, NodeRole::Notifier];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Api => "api",
            NodeRole::Loans => "loans",
            NodeRole::Credit => "credit",
            NodeRole::Appraisal => "appraisal",
            NodeRole::Notifier => "notifier",
        }
    }

    fn parse(text: &str) -> Result<NodeRole, String> {
        let wanted = text.trim().to_ascii_lowercase();
        NodeRole::ALL.into_iter().find(|role| role.as_str() == wanted).ok_or_else(|| {
            let known: Vec<&str> = NodeRole::ALL.iter().map(|r| r.as_str()).collect();
            format!("has an unknown role `{}` (the roles are {})", text.trim(), known.join(", "))
        })
    }
}

/// The roles of this node: every role unless `node.roles` lists some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRoles {
    roles: BTreeSet<NodeRole>,
    /// Listed in the settings (false: all, by default).
    listed: bool,
}

impl Default for NodeRoles {
    fn default() -> Self {
        Self { roles: NodeRole::ALL.into_iter().collect(), listed: false }
    }
}

impl NodeRoles {
    /// The roles of a `node.roles` list (a comma list in the environment); empty entries are
    /// ignored and no entry at all means every role.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let roles = entries
            .iter()
            .map(AsRef::as_ref)
            .filter(|entry| !entry.trim().is_empty())
            .map(NodeRole::parse)
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(match roles.is_empty() {
            true => Self::default(),
            false => Self { roles, listed: true },
        })
    }

    pub fn runs(&self, role: NodeRole) -> bool {
        self.roles.contains(&role)
    }

    /// Does this node publish the outbox rows nobody published (the start-up resume and the
    /// periodic sweep)? The nodes that commit rows do: `api` (submissions, operators' retries)
    /// and `loans` (the saga's steps). A service node commits none.
    pub fn sweeps_outbox(&self) -> bool {
        self.runs(NodeRole::Api) || self.runs(NodeRole::Loans)
    }

    /// Were the roles listed in the settings (not the default of every role)?
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// The role names, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        self.roles.iter().map(|role| role.as_str()).collect()
    }
}

impl fmt::Display for NodeRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_roles_is_parsed_into_a_set_and_none_means_all() {
        let roles = NodeRoles::parse(&["api", " Loans", "loans", ""]).unwrap();
        assert_eq!(roles.names(), ["api", "loans"]);
        assert!(roles.listed() && roles.runs(NodeRole::Api) && roles.runs(NodeRole::Loans));
        assert!(!roles.runs(NodeRole::Credit) && !roles.runs(NodeRole::Notifier));
        assert!(roles.sweeps_outbox());
        let all = NodeRoles::parse::<&str>(&[]).unwrap();
        assert_eq!(all, NodeRoles::default());
        assert_eq!(all.to_string(), "api,loans,credit,appraisal,notifier");
        assert!(!all.listed() && NodeRole::ALL.iter().all(|role| all.runs(*role)));
        assert_eq!(NodeRoles::parse(&[" "]).unwrap(), NodeRoles::default());
    }

    #[test]
    fn a_worker_consumes_only_its_services_and_sweeps_nothing() {
        let worker = NodeRoles::parse(&["credit", "appraisal", "notifier"]).unwrap();
        assert!(!worker.runs(NodeRole::Api) && !worker.runs(NodeRole::Loans));
        assert!(worker.runs(NodeRole::Credit) && worker.runs(NodeRole::Notifier));
        assert!(!worker.sweeps_outbox());
    }

    #[test]
    fn an_unknown_role_is_named_with_the_known_ones() {
        let err = NodeRoles::parse(&["api", "billing"]).unwrap_err();
        assert_eq!(err, "has an unknown role `billing` (the roles are api, loans, credit, appraisal, notifier)");
    }
}
