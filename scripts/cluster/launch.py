#!/usr/bin/env python3
"""Start commands inside emulated cluster nodes from inside other nodes.

A process in one node's PID namespace cannot setns() into a sibling node's, so
launches issued from inside a node (mpirun's ssh-compatible agent on the head
node) go through this server, which runs in the root namespaces:

  launch.py serve SOCKET STATE_DIR TTL   listen on SOCKET (mode 0700) until SIGTERM or TTL
  launch.py run SOCKET NODE CMD [ARG...] run CMD in NODE; stdin, stdout and stderr are the
                                         caller's own (passed as descriptors), the exit
                                         status is the command's (128+N when killed by N)

When the client goes away before the command ends (mpirun killed its agent),
the command's whole process group is killed. A node is found through
STATE_DIR/nodes/NODE.pid, written by cluster.sh.
"""
import array
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading

CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def node_pid(state, node):
    """Root-namespace PID of NODE's init, or None when NODE is not up."""
    if "/" in node or node.startswith("."):
        return None
    try:
        with open(os.path.join(state, "nodes", node + ".pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def recv_request(conn):
    """One request: a JSON header and the caller's three standard descriptors."""
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return json.loads(msg.decode()), list(fds)


def serve_one(conn, state):
    fds = []
    try:
        req, fds = recv_request(conn)
        pid = node_pid(state, req.get("node", ""))
        argv = req.get("argv") or []
        if pid is None or len(fds) != 3 or not argv:
            os.write(fds[2] if len(fds) == 3 else 2,
                     ("launch: node '%s' is not up (or bad request)\n" % req.get("node")).encode())
            conn.sendall(struct.pack("!i", 255))
            return
        cmd = ["nsenter", "-t", str(pid), "-n", "-u", "-i", "-p", "-m",
               "--wd=" + req.get("cwd", "/"), "--"] + argv
        child = subprocess.Popen(cmd, stdin=fds[0], stdout=fds[1], stderr=fds[2],
                                 env=CLEAN_ENV, start_new_session=True)
        for fd in fds:
            os.close(fd)
        fds = []
        pidfd = os.pidfd_open(child.pid)
        try:
            ready, _, _ = select.select([pidfd, conn], [], [])
            if pidfd not in ready:
                # The caller left (EOF or error): end what it started.
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
        rc = child.wait()
        rc = 128 - rc if rc < 0 else rc
        try:
            conn.sendall(struct.pack("!i", rc))
        except OSError:
            pass
    except Exception as e:  # one bad request never stops the server
        print("launch: request failed: %r" % (e,), file=sys.stderr, flush=True)
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()


def serve(path, state, ttl):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    srv.bind(path)
    os.umask(old)
    os.chmod(path, 0o700)
    srv.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(ttl)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_one, args=(conn, state), daemon=True).start()


def run(path, node, argv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        print("launch: cannot reach the launch server at %s: %s" % (path, e.strerror), file=sys.stderr)
        return 255
    hdr = json.dumps({"node": node, "argv": argv, "cwd": "/"}).encode()
    s.sendmsg([hdr], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    buf = b""
    while len(buf) < 4:
        part = s.recv(4 - len(buf))
        if not part:
            print("launch: server closed the connection to %s" % node, file=sys.stderr)
            return 255
        buf += part
    return struct.unpack("!i", buf)[0]


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
