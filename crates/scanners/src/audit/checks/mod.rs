//! The rules applied to services, stacks and the Traefik configuration of one daemon.

mod cross;
mod routers;
mod secrets;
mod services;

use super::make_finding;
use super::rules::rule_by_id;
use super::tree::Pos;
use super::world::World;
use crate::finding::Finding;
use cross::cross_stack_rules;
use routers::{edge_rules, router_rules};
use secrets::weak_defaults;
use services::{public_networks, service_rules};

/// Collects findings.
pub(super) struct Sink<'a> {
    pub world: &'a World,
    pub findings: Vec<Finding>,
}

impl Sink<'_> {
    pub fn report(
        &mut self,
        rule: &str,
        pos: Pos,
        stack: Option<&str>,
        subject: &str,
        message: String,
    ) {
        let Some(rule) = rule_by_id(rule) else {
            return;
        };
        let path = self
            .world
            .files
            .display
            .get(pos.file)
            .cloned()
            .unwrap_or_default();
        self.findings
            .push(make_finding(rule, &path, pos.line, stack, subject, message));
    }
}

/// Runs every rule.
pub(crate) fn run(world: &mut World) -> Vec<Finding> {
    let world: &World = world;
    let mut sink = Sink {
        world,
        findings: Vec::new(),
    };
    let public = public_networks(world);
    for project in &world.projects {
        for s in &project.services {
            service_rules(&mut sink, project, s, &public);
        }
        weak_defaults(&mut sink, project);
    }
    edge_rules(&mut sink);
    router_rules(&mut sink);
    for m in &world.misnested {
        sink.report("SA701", m.pos, None, &m.subject, m.message.clone());
    }
    if world.projects.len() > 1 {
        cross_stack_rules(&mut sink);
    }
    sink.findings
}
