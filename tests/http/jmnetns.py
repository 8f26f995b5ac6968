"""Test support for partitions: a private network of Linux network
namespaces made by the test, torn down on every exit path.

Topology: a hub namespace holding two bridges, "data" (10.77.0.0/24:
brokers, workers, clients) and "etcd" (10.78.0.0/24: etcd and the
brokers), and one namespace per node, joined to its bridges by veth pairs
(eth0, eth1 inside; d<node>, e<node> on the bridges). The test's main
thread and the threads it starts live in the hub (10.77.0.1, 10.78.0.1):
they reach every node. cut(node, nets) sets the node's bridge ports down,
so its packets and those sent to it are dropped silently (a partition,
not a refusal; it needs nothing but iproute2, where tc filters or
netfilter would need kernel modules and tools a machine may lack);
heal() sets them up again. A client inside the node's own
namespace still reaches the node (a client on its side of the cut).

Namespaces are named jmp-<test pid>-<node>; those of a test that died
without tearing down (its pid gone) are removed by the next one. Needs
root and iproute2's ip; netns_unavailable() says why not."""

import ctypes
import os
import re
import shutil
import signal
import subprocess

from jmetcd import Cluster, Etcd

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
IP = shutil.which("ip") or "/usr/sbin/ip"


def enter_netns(name_or_fd):
    """Moves the calling thread (not the process) into a namespace, by
    name (/run/netns/NAME) or an open fd of one; threads and processes it
    starts afterwards are in it too."""
    fd = name_or_fd
    if isinstance(name_or_fd, str):
        fd = os.open("/run/netns/" + name_or_fd, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (name_or_fd, os.strerror(err)))
    finally:
        if isinstance(name_or_fd, str):
            os.close(fd)


def ip(*args, check=True):
    p = subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def netns_unavailable():
    """None when this process can make network namespaces, else why not
    (one line, for a skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root (euid %d)" % os.geteuid()
    if not os.path.exists(IP):
        return "iproute2's ip is not installed (scripts/install-deps adds it)"
    probe = "jmp-%d-probe" % os.getpid()
    p = ip("netns", "add", probe, check=False)
    if p.returncode != 0:
        return "ip netns add failed: " + p.stderr.strip()
    ip("netns", "del", probe, check=False)
    return None


def remove_stale():
    """Deletes the namespaces of earlier tests whose process is gone, after
    killing what still runs in them (their brokers, etcd and workers)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for name in names:
        m = re.match(r"jmp-(\d+)-", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            ip("netns", "del", name, check=False)


class Terminated(Exception):
    """SIGTERM arrived (a ctest timeout, an operator): raised in the main
    thread so the test fails through its tearDown, which stops every
    process and deletes the namespaces."""


def fail_on_sigterm():
    def raise_terminated(signo, frame):
        raise Terminated("terminated by signal %d" % signo)
    signal.signal(signal.SIGTERM, raise_terminated)


# The two networks: brokers, workers and clients talk on "data"; etcd
# and the brokers on "etcd", so a broker can be cut off from etcd alone.
NETS = {"data": ("br0", "10.77.0"), "etcd": ("br1", "10.78.0")}


class Net:
    """The hub and its nodes. The constructor moves the calling thread
    into the hub (10.77.0.1 and 10.78.0.1: it reaches every node);
    teardown() moves it back and deletes every namespace."""

    def __init__(self):
        remove_stale()
        self.prefix = "jmp-%d-" % os.getpid()
        self.addr = {}  # node -> {net: address}
        self.made = []
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            self.hub = self._add_ns("hub")
            enter_netns(self.hub)
            ip("link", "set", "lo", "up")
            for bridge, subnet in NETS.values():
                ip("link", "add", bridge, "type", "bridge")
                ip("addr", "add", subnet + ".1/24", "dev", bridge)
                ip("link", "set", bridge, "up")
        except BaseException:
            self.teardown()
            raise

    def _add_ns(self, node):
        name = self.prefix + node
        ip("netns", "add", name)
        self.made.append(name)
        return name

    def add(self, node, nets=("data",)):
        """A namespace for node with a leg on each of nets (eth0, eth1 in
        that order); returns its address on the first."""
        ns = self._add_ns(node)
        ip("-n", ns, "link", "set", "lo", "up")
        self.addr[node] = {}
        for i, net in enumerate(nets):
            bridge, subnet = NETS[net]
            taken = sum(1 for a in self.addr.values() if net in a)
            addr = "%s.%d" % (subnet, taken + 2)
            port, inside = self._port(node, net), "eth%d" % i
            ip("link", "add", port, "type", "veth", "peer", "name", inside, "netns", ns)
            ip("link", "set", port, "master", bridge)
            ip("link", "set", port, "up")
            ip("-n", ns, "addr", "add", addr + "/24", "dev", inside)
            ip("-n", ns, "link", "set", inside, "up")
            self.addr[node][net] = addr
        return self.addr[node][nets[0]]

    @staticmethod
    def _port(node, net):
        return net[0] + node  # "d<node>" on br0, "e<node>" on br1

    def ns(self, node):
        return self.prefix + node

    def wrap(self, node):
        """The command prefix that runs a program in node's namespace."""
        return [IP, "netns", "exec", self.ns(node)]

    def cut(self, node, nets=("data", "etcd")):
        """Cuts node off the given networks (all by default)."""
        for net in nets:
            if net in self.addr[node]:
                ip("link", "set", self._port(node, net), "down")

    def heal(self, node, nets=("data", "etcd")):
        for net in nets:
            if net in self.addr[node]:
                ip("link", "set", self._port(node, net), "up")

    def teardown(self):
        """Back to the thread's own namespace; every namespace deleted
        (their veths go with them). Run it after the processes inside
        stopped: a namespace lives on while a process is in it."""
        if self.home is not None:
            enter_netns(self.home)
            os.close(self.home)
            self.home = None
        for name in reversed(self.made):
            ip("netns", "del", name, check=False)
        self.made = []


class NetCluster(Cluster):
    """jmetcd.Cluster in a Net: etcd in namespace "etcd", each broker in a
    namespace of its own name, listening on its address there (NNG 7400,
    its event socket 7401,
    replication 7500, HTTP on a free port; --insecure-listen, as the
    network is private to the test). stop() stops every process, then
    deletes the namespaces."""

    def __init__(self, ttl_ms=3000, renew_ms=500):
        self.net = Net()
        try:
            super().__init__(ttl_ms, renew_ms)
        except BaseException:
            self.net.teardown()
            raise

    def make_etcd(self):
        addr = self.net.add("etcd", ("etcd",))
        return Etcd(self.tmp, host=addr, wrap=self.net.wrap("etcd"), client_port=2379, peer_port=2380,
                    wait=False)

    def placement(self, name, d):
        if name not in self.net.addr:
            self.net.add(name, ("data", "etcd"))
        addr = self.net.addr[name]["data"]
        return ({"listen": "tcp://%s:7400" % addr, "http_addr": "%s:0" % addr,
                 "wrap": self.net.wrap(name)}, "tcp://%s:7500" % addr)

    def start(self, name, extra=(), replicated=False):
        return super().start(name, ["--insecure-listen"] + list(extra), replicated)

    def worker(self, brokers, queue, handler, name, node=None, extra=()):
        """A worker in node's namespace (made when new), else in the hub."""
        wrap = ()
        if node is not None:
            if node not in self.net.addr:
                self.net.add(node)
            wrap = self.net.wrap(node)
        return super().worker(brokers, queue, handler, name, wrap=wrap, extra=extra)

    def stop(self):
        try:
            super().stop()
        finally:
            self.net.teardown()
