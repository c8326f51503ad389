//! Where the enforced rule set comes from.
//!
//! Until the policy files of `[policies] paths` are read (the CCNP/TOML
//! front end), the daemon enforces the built-in example policy below:
//! inbound default-deny, with the configuration's failsafe ports allowed.
//! In audit mode (the default) nothing is dropped; every inbound flow the
//! example would drop is reported as AUDIT.

use ipnet::IpNet;

use crate::{
    config::{Config, FailsafePort},
    ruleset::{Action, Cidr, Direction, L4, Peers, Rule, RuleSet},
};

fn protocol(p: &FailsafePort) -> Result<u8, String> {
    match p.protocol.to_ascii_uppercase().as_str() {
        "TCP" => Ok(hostfw_common::proto::TCP),
        "UDP" => Ok(hostfw_common::proto::UDP),
        "SCTP" => Ok(hostfw_common::proto::SCTP),
        other => Err(format!(
            "[failsafe] protocol {other:?}: expected \"TCP\", \"UDP\" or \"SCTP\""
        )),
    }
}

/// The failsafe rules of the configuration (ids from 1).
pub fn failsafe_rules(cfg: &Config) -> Result<Vec<Rule>, String> {
    let entries = cfg
        .failsafe
        .inbound
        .iter()
        .map(|p| (Direction::Ingress, p))
        .chain(cfg.failsafe.outbound.iter().map(|p| (Direction::Egress, p)));
    let mut rules = Vec::new();
    for (id, (direction, p)) in (1u32..).zip(entries) {
        let peers = match p.cidr {
            Some(net) => Peers::Cidrs(vec![Cidr {
                net: IpNet::new(net.network(), net.prefix_len()).unwrap_or(net),
                except: Vec::new(),
            }]),
            None => Peers::Any,
        };
        rules.push(Rule {
            id,
            direction,
            action: Action::Failsafe,
            peers,
            l4: vec![L4::Ports {
                proto: protocol(p)?,
                first: p.port,
                last: p.port,
            }],
        });
    }
    Ok(rules)
}

/// The built-in example policy: inbound default-deny plus failsafe ports.
pub fn rules_from_config(cfg: &Config) -> Result<RuleSet, String> {
    log::info!("policy: built-in example (inbound default-deny, failsafe ports allowed)");
    Ok(RuleSet {
        mode: cfg.mode,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: failsafe_rules(cfg)?,
    })
}
