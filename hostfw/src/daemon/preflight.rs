//! The lockout preflight: before a policy is enforced, the caller's ssh
//! session (`SSH_CONNECTION`) and every established inbound connection to
//! a local sshd must still be allowed by it.

use std::net::IpAddr;

use crate::{
    refeval::{self, Packet, Verdict},
    ruleset::{Direction, Mode, RuleSet},
};

/// An ssh session: client address and the server port it reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The client.
    pub client: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// The server address.
    pub server: IpAddr,
    /// The server port (sshd's).
    pub server_port: u16,
}

/// Reads `SSH_CONNECTION` ("client_ip client_port server_ip server_port").
#[must_use]
pub fn parse_ssh_connection(s: &str) -> Option<Session> {
    let mut it = s.split_whitespace();
    let client = it.next()?.parse().ok()?;
    let client_port = it.next()?.parse().ok()?;
    let server = it.next()?.parse().ok()?;
    let server_port = it.next()?.parse().ok()?;
    Some(Session {
        client,
        client_port,
        server,
        server_port,
    })
}

/// Whether `rules` would cut `session` (a new inbound TCP flow to the
/// server port from the client, as the datapath sees it after the
/// revision change); `None` if it passes.
#[must_use]
pub fn cuts(rules: &RuleSet, session: &Session) -> Option<String> {
    if rules.mode != Mode::Enforce {
        return None;
    }
    let pkt = Packet {
        direction: Direction::Ingress,
        remote: session.client,
        proto: hostfw_common::proto::TCP,
        port: Some(session.server_port),
        icmp: None,
    };
    let out = refeval::evaluate(rules, &pkt);
    (out.verdict == Verdict::Denied).then(|| {
        format!(
            "it would cut the ssh session from {} port {} to port {} ({}{}); \
             fix the policy, or apply with --force",
            session.client,
            session.client_port,
            session.server_port,
            out.reason.name(),
            if out.rule_id == 0 {
                String::new()
            } else {
                format!(", rule {}", out.rule_id)
            }
        )
    })
}

/// The established inbound connections to this node's sshd.
#[must_use]
pub fn ssh_sessions() -> Vec<Session> {
    let conns = match crate::sockdiag::established() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("lockout preflight: cannot list connections: {e}");
            return Vec::new();
        }
    };
    let ports = crate::sockdiag::sshd_ports();
    crate::sockdiag::inbound(&conns, &ports)
        .into_iter()
        .map(|c| Session {
            client: c.remote.ip(),
            client_port: c.remote.port(),
            server: c.local.ip(),
            server_port: c.local.port(),
        })
        .collect()
}

/// Refuses a policy that would cut the caller's session or any
/// established ssh session to this node.
pub fn check(rules: &RuleSet, caller: Option<&str>) -> Result<(), String> {
    if rules.mode != Mode::Enforce {
        return Ok(());
    }
    let mut sessions: Vec<Session> = caller.and_then(parse_ssh_connection).into_iter().collect();
    sessions.extend(ssh_sessions());
    for s in sessions {
        if let Some(why) = cuts(rules, &s) {
            return Err(format!("refused: {why}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::{Action, L4, Peers, Rule};

    #[test]
    fn reads_ssh_connection() {
        let s = parse_ssh_connection("10.0.0.5 51234 10.0.0.1 22").expect("valid");
        assert_eq!(s.server_port, 22);
        assert!(parse_ssh_connection("10.0.0.5 51234").is_none());
        assert!(parse_ssh_connection("x y z w").is_none());
    }

    #[test]
    fn a_policy_without_ssh_is_refused_in_enforce_mode_only() {
        let mut rules = RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            ..RuleSet::default()
        };
        let caller = Some("10.0.0.5 51234 10.0.0.1 22");
        let err = check(&rules, caller).expect_err("would cut");
        assert!(err.contains("10.0.0.5 port 51234 to port 22"), "{err}");
        assert!(err.contains("--force"), "{err}");
        rules.mode = Mode::Audit;
        assert!(check(&rules, caller).is_ok(), "audit cuts nothing");
        rules.mode = Mode::Enforce;
        rules.rules.push(Rule::new(
            1,
            Direction::Ingress,
            Action::Allow,
            Peers::Any,
            vec![L4::port(hostfw_common::proto::TCP, 22)],
        ));
        assert!(check(&rules, caller).is_ok(), "ssh allowed");
        assert!(check(&RuleSet::default(), None).is_ok());
    }
}
