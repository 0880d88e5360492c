//! Who is who: the roles a process can host, the address of one process, and
//! where a message goes. Routing is decided here, never in a driver.
//!
//! # The addressing rule
//! Ids are unique **within a role**, not across roles: acceptor 1, proposer 1
//! and learner 1 may be three different processes (the multicast layout), or
//! one process hosting all three (a [`crate::Server`]). So an address names a
//! role *and* an id ([`Addr`]), and a process names its id and *every* role it
//! hosts ([`Process`]). A process receives a [`Destination`] exactly when
//! [`Destination::reaches`] says so; a driver needs no table of which role
//! handles which message kind.
//!
//! The alternative, ids unique across every role, would make every driver
//! invent an id scheme for roles apart (the multicast command line is
//! `<role> <id>`, with acceptors `1..n` and proposers `1..m`) and would still
//! need the role to pick a multicast group. Naming the role keeps the ids
//! the operator types and makes the group of a destination a property of
//! the destination itself.

use crate::types::NodeId;
use core::fmt;
use serde::{Deserialize, Serialize};

/// One of the four kinds of process in a Paxos deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Campaigns for leadership and proposes commands into slots.
    Proposer,
    /// Votes, durably: Paxos's memory.
    Acceptor,
    /// Finds out what was chosen and delivers it in slot order.
    Learner,
    /// Submits commands (and, apart from the servers, learns their fate).
    Client,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 4] = [Role::Proposer, Role::Acceptor, Role::Learner, Role::Client];

    const fn bit(self) -> u8 {
        match self {
            Role::Proposer => 1,
            Role::Acceptor => 2,
            Role::Learner => 4,
            Role::Client => 8,
        }
    }

    /// The lower-case name, as command lines and logs spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Proposer => "proposer",
            Role::Acceptor => "acceptor",
            Role::Learner => "learner",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of roles: the roles one process hosts, or the receivers of a group.
///
/// ```
/// use paxos_core::{Role, Roles};
/// assert!(Roles::SERVER.contains(Role::Acceptor));
/// assert!(!Roles::SERVER.contains(Role::Client));
/// assert_eq!(Roles::from(Role::Learner).union(Roles::CLIENT).len(), 2);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Roles(u8);

impl Roles {
    /// No role.
    pub const NONE: Roles = Roles(0);
    /// Proposers.
    pub const PROPOSER: Roles = Roles(Role::Proposer.bit());
    /// Acceptors.
    pub const ACCEPTOR: Roles = Roles(Role::Acceptor.bit());
    /// Learners.
    pub const LEARNER: Roles = Roles(Role::Learner.bit());
    /// Clients.
    pub const CLIENT: Roles = Roles(Role::Client.bit());
    /// What a [`crate::Server`] hosts: proposer, acceptor and learner.
    pub const SERVER: Roles =
        Roles(Role::Proposer.bit() | Role::Acceptor.bit() | Role::Learner.bit());
    /// Every role.
    pub const ALL: Roles = Roles(0b1111);

    /// Is `role` in the set?
    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Do the two sets share a role?
    pub const fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets together.
    pub const fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// How many roles are in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// True for the empty set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The first role of the set in [`Role::ALL`] order, if any.
    pub fn first(self) -> Option<Role> {
        self.iter().next()
    }

    /// The set as a byte (bit 0 proposer, 1 acceptor, 2 learner, 3 client),
    /// for wire formats.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of a byte from [`Roles::bits`]; `None` if unknown bits are set.
    pub const fn from_bits(bits: u8) -> Option<Roles> {
        if bits & !Roles::ALL.0 == 0 {
            Some(Roles(bits))
        } else {
            None
        }
    }
}

impl From<Role> for Roles {
    fn from(role: Role) -> Roles {
        Roles(role.bit())
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The address of one process: the role it is addressed in and its id among
/// the processes of that role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Addr {
    /// The role the process is addressed in.
    pub role: Role,
    /// Its id among the processes of that role.
    pub id: NodeId,
}

impl Addr {
    /// The process `id` in role `role`.
    pub const fn new(role: Role, id: NodeId) -> Addr {
        Addr { role, id }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.id.0)
    }
}

/// Who a process is: its id and every role it hosts. This is what a driver
/// says a message came from ([`crate::Input::Receive`]), as its transport
/// established it, and what it asks [`Destination::reaches`] about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Process {
    /// Its id, unique among the processes of each role it hosts.
    pub id: NodeId,
    /// The roles it hosts.
    pub roles: Roles,
}

impl Process {
    /// Process `id` hosting `roles`.
    pub const fn new(id: NodeId, roles: Roles) -> Process {
        Process { id, roles }
    }

    /// A [`crate::Server`]: proposer, acceptor and learner with one id.
    pub const fn server(id: NodeId) -> Process {
        Process::new(id, Roles::SERVER)
    }

    /// A process hosting the one role `role`.
    pub const fn only(role: Role, id: NodeId) -> Process {
        Process::new(id, Roles(role.bit()))
    }

    /// An address that reaches this process and no other: its id in its
    /// first role. Replies go here.
    pub fn addr(&self) -> Addr {
        Addr::new(self.roles.first().unwrap_or(Role::Client), self.id)
    }

    /// Does it host `role`?
    pub const fn hosts(&self, role: Role) -> bool {
        self.roles.contains(role)
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.roles == Roles::SERVER {
            return write!(f, "server {}", self.id.0);
        }
        let mut first = true;
        for role in self.roles.iter() {
            if !first {
                f.write_str("+")?;
            }
            first = false;
            f.write_str(role.name())?;
        }
        write!(f, " {}", self.id.0)
    }
}

/// Where a message goes.
///
/// A group never includes the process that sends: a driver skips the sender
/// when it expands one (a [`crate::Server`] has already handed its own roles
/// what they needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// One process: the one with this id among those hosting this role.
    To(Addr),
    /// Every process that hosts at least one of these roles.
    Group(Roles),
}

impl Destination {
    /// One process, by role and id.
    pub const fn to(role: Role, id: NodeId) -> Destination {
        Destination::To(Addr::new(role, id))
    }

    /// Every process hosting `roles`.
    pub const fn group(roles: Roles) -> Destination {
        Destination::Group(roles)
    }

    /// Is `process` a receiver of this destination? Drivers call this to
    /// expand a destination over the processes they know (or, on a shared
    /// medium such as multicast, to drop what is not for them). The sender
    /// itself is never a receiver; skipping it is the caller's part.
    ///
    /// ```
    /// use paxos_core::{Destination, NodeId, Process, Role, Roles};
    /// let server2 = Process::server(NodeId(2));
    /// let learner2 = Process::only(Role::Learner, NodeId(2));
    /// let to_acceptor2 = Destination::to(Role::Acceptor, NodeId(2));
    /// assert!(to_acceptor2.reaches(&server2));
    /// assert!(!to_acceptor2.reaches(&learner2), "same id, other role");
    /// assert!(Destination::group(Roles::LEARNER).reaches(&learner2));
    /// ```
    pub fn reaches(&self, process: &Process) -> bool {
        match *self {
            Destination::To(addr) => addr.id == process.id && process.roles.contains(addr.role),
            Destination::Group(roles) => process.roles.intersects(roles),
        }
    }

    /// The roles a receiver must host (one for [`Destination::To`]).
    pub fn roles(&self) -> Roles {
        match *self {
            Destination::To(addr) => addr.role.into(),
            Destination::Group(roles) => roles,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::To(addr) => write!(f, "{addr}"),
            Destination::Group(roles) if *roles == Roles::ALL => f.write_str("everyone"),
            Destination::Group(roles) => {
                let mut first = true;
                for role in roles.iter() {
                    if !first {
                        f.write_str("+")?;
                    }
                    first = false;
                    write!(f, "{}s", role.name())?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_to_point_destination_reaches_only_its_role_and_id() {
        let d = Destination::to(Role::Proposer, NodeId(3));
        assert!(d.reaches(&Process::server(NodeId(3))));
        assert!(d.reaches(&Process::only(Role::Proposer, NodeId(3))));
        assert!(!d.reaches(&Process::only(Role::Acceptor, NodeId(3))));
        assert!(!d.reaches(&Process::server(NodeId(2))));
    }

    #[test]
    fn a_group_reaches_every_host_of_any_of_its_roles() {
        let d = Destination::group(Roles::LEARNER.union(Roles::CLIENT));
        assert!(d.reaches(&Process::server(NodeId(1))));
        assert!(d.reaches(&Process::only(Role::Client, NodeId(1))));
        assert!(!d.reaches(&Process::only(Role::Acceptor, NodeId(1))));
        assert!(Destination::group(Roles::ALL).reaches(&Process::only(Role::Client, NodeId(9))));
        assert!(!Destination::group(Roles::NONE).reaches(&Process::server(NodeId(1))));
    }

    #[test]
    fn a_reply_address_reaches_the_asker_and_nobody_else_of_another_role() {
        let client = Process::only(Role::Client, NodeId(2));
        let learner = Process::only(Role::Learner, NodeId(2));
        let reply = Destination::To(client.addr());
        assert!(reply.reaches(&client));
        assert!(!reply.reaches(&learner));
        assert!(
            Destination::To(Process::server(NodeId(4)).addr()).reaches(&Process::server(NodeId(4)))
        );
    }

    #[test]
    fn role_sets_round_trip_through_bytes_and_refuse_unknown_bits() {
        for bits in 0..=0b1111u8 {
            assert_eq!(Roles::from_bits(bits).map(Roles::bits), Some(bits));
        }
        assert_eq!(Roles::from_bits(0b1_0000), None);
        assert_eq!(Roles::SERVER.len(), 3);
        assert_eq!(Roles::SERVER.first(), Some(Role::Proposer));
    }
}
