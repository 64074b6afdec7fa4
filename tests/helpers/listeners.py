"""Every listening TCP socket on this machine, with the process that holds it and that process's ancestors,
read from /proc (no `ss` needed). Tests use it to prove what a cluster the kit starts exposes."""

import ipaddress
import os
import socket


def _addresses(path, family):
    """{inode: (ip, port)} of the sockets in LISTEN state in /proc/net/tcp or tcp6."""
    found = {}
    try:
        with open(path) as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return found
    for row in rows:
        fields = row.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state != "0A":  # TCP_LISTEN
            continue
        hex_ip, hex_port = local.split(":")
        raw = bytes.fromhex(hex_ip)
        # The kernel prints each 32-bit word in host order (little-endian here).
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        found[inode] = (str(ipaddress.ip_address(socket.inet_ntop(family, raw))), int(hex_port, 16))
    return found


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _name(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def listeners():
    """[{ip, port, pid, name, ancestors}] for every listening TCP socket whose holder this process can see."""
    sockets = {**_addresses("/proc/net/tcp", socket.AF_INET), **_addresses("/proc/net/tcp6", socket.AF_INET6)}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
            if inode in sockets:
                ancestors, parent = [], _parent(int(pid))
                while parent > 1 and len(ancestors) < 64:
                    ancestors.append(parent)
                    parent = _parent(parent)
                ip, port = sockets[inode]
                found.append({"ip": ip, "port": port, "pid": int(pid), "name": _name(pid), "ancestors": ancestors})
    return found


def is_loopback(ip):
    address = ipaddress.ip_address(ip)
    # An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is how a dual-stack socket shows an IPv4 loopback bind.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
