"""Build hosts on this machine for the scale-out test: Debian's sshd, each in a network
namespace of its own, with its own /root (a bind mount) and its own GP_WORK, on a bridge
whose address in the root namespace is where the cache server listens.

Nothing leaves the machine: the only addresses are those of the bridge and the
namespaces made here, in a /24 of 10.201.0.0/16 that no route of this machine uses.
Needs root (ip netns, mount). Run by hand:

    python3 ci/tests/sshhosts.py start DIR 3    # prints the GNU parallel sshloginfile
    python3 ci/tests/sshhosts.py stop DIR
"""
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SSHD = '/usr/sbin/sshd'
LABS = itertools.count()


def run(*cmd: str) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()}')
    return proc.stdout


@dataclass
class Host:
    name: str
    netns: str
    address: str
    home: Path
    work: Path
    # More environment of its sessions (sshd SetEnv), e.g. a PATH with stand-ins first.
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0

    def sshlogin(self, lab: 'Lab') -> str:
        return f'ssh -F {lab.ssh_config} root@{self.address}'


@dataclass
class Lab:
    dir: Path
    tag: str
    bridge: str
    gateway: str
    hosts: list[Host]

    @property
    def ssh_config(self) -> Path:
        return self.dir / 'ssh_config'

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def hosts_file(self, names: list[str] | None = None, slots: int = 1) -> Path:
        """A GNU parallel --sshloginfile naming these hosts (all by default)."""
        chosen = [h for h in self.hosts if names is None or h.name in names]
        path = self.dir / f'hosts-{"-".join(h.name for h in chosen)}'
        path.write_text(''.join(f'{slots}/{h.sshlogin(self)}\n' for h in chosen))
        return path

    def save(self) -> None:
        state = {**asdict(self), 'dir': str(self.dir),
                 'hosts': [{**asdict(h), 'home': str(h.home), 'work': str(h.work)}
                           for h in self.hosts]}
        (self.dir / 'lab.json').write_text(json.dumps(state, indent=2) + '\n')

    @classmethod
    def load(cls, directory: Path) -> 'Lab':
        state = json.loads((directory / 'lab.json').read_text())
        hosts = [Host(**{**h, 'home': Path(h['home']), 'work': Path(h['work'])})
                 for h in state.pop('hosts')]
        return cls(**{**state, 'dir': Path(state['dir']), 'hosts': hosts})


def can_start() -> bool:
    """Root, sshd, and namespaces this process may make (an unprivileged container may not)."""
    if os.geteuid() != 0 or not Path(SSHD).is_file():
        return False
    return subprocess.run(['unshare', '--net', '--mount', '--uts', 'true'],
                          capture_output=True).returncode == 0


def free_subnet(tag: str) -> str:
    """10.201.N: the first N from the tag's on that no route of this machine covers."""
    routes = run('ip', '-4', 'route', 'show', 'table', 'all')
    start = int(tag) % 250
    for step in range(250):
        third = (start + step) % 250 + 1
        if f'10.201.{third}.' not in routes and '10.201.0.0/16' not in routes \
                and '10.0.0.0/8' not in routes:
            return f'10.201.{third}'
    raise RuntimeError('no free /24 in 10.201.0.0/16')


def start_sshd(lab: Lab, host: Host) -> None:
    """sshd in the host's namespace with its home on /root; nice 19, as builds there are."""
    config = lab.dir / f'sshd_config.{host.name}'
    config.write_text(f"""\
ListenAddress {host.address}
HostKey {lab.dir}/host_key
PidFile none
AuthorizedKeysFile {lab.dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv GP_WORK={host.work} {' '.join(f'{k}={v}' for k, v in host.env.items())}
""")
    host.home.mkdir(parents=True, exist_ok=True)
    host.work.mkdir(parents=True, exist_ok=True)
    Path('/run/sshd').mkdir(exist_ok=True)
    log = (lab.dir / f'sshd.{host.name}.log').open('a')
    proc = subprocess.Popen(
        ['ip', 'netns', 'exec', host.netns, 'unshare', '--mount', '--uts', '--propagation',
         'private', 'sh', '-c', f'mount --bind "{host.home}" /root && hostname {host.name} && '
         f'exec nice -n 19 {SSHD} -D -e -f "{config}"'],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host.pid = proc.pid
    for _ in range(100):
        if subprocess.run(['ip', 'netns', 'exec', host.netns, 'bash', '-c',
                           f'exec 3<>/dev/tcp/{host.address}/22'],
                          capture_output=True).returncode == 0:
            return
        if proc.poll() is not None:
            raise RuntimeError(f'sshd of {host.name} exited: see {lab.dir}/sshd.{host.name}.log')
        time.sleep(0.1)
    raise RuntimeError(f'sshd of {host.name} does not listen on {host.address}:22')


def start(directory: Path, works: dict[str, Path], env: dict[str, str] | None = None) -> Lab:
    """One host per entry of @works (name -> its GP_WORK), each with its own sshd; @env:
    more environment of every host's sessions."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = str((os.getpid() * 10 + next(LABS)) % 10000)
    subnet = free_subnet(tag)
    lab = Lab(dir=directory.resolve(), tag=tag, bridge=f'gpso{tag}br', gateway=f'{subnet}.1',
              hosts=[])
    for key in ('host_key', 'id_ed25519'):
        if not (directory / key).exists():
            run('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(directory / key))
    (directory / 'authorized_keys').write_text((directory / 'id_ed25519.pub').read_text())
    lab.ssh_config.write_text(f"""\
Host *
  IdentityFile {lab.dir}/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
  ServerAliveInterval 5
  ServerAliveCountMax 3
""")
    run('ip', 'link', 'add', lab.bridge, 'type', 'bridge')
    lab.save()  # from here on, stop() can undo what was made
    run('ip', 'addr', 'add', f'{lab.gateway}/24', 'dev', lab.bridge)
    run('ip', 'link', 'set', lab.bridge, 'up')
    for number, (name, work) in enumerate(works.items(), 11):
        host = Host(name=name, netns=f'gpso{tag}{name}', address=f'{subnet}.{number}',
                    home=lab.dir / name / 'root', work=work, env=dict(env or {}))
        lab.hosts.append(host)
        run('ip', 'netns', 'add', host.netns)
        lab.save()
        run('ip', 'link', 'add', host.netns, 'type', 'veth', 'peer', 'name', 'eth0',
            'netns', host.netns)
        run('ip', 'link', 'set', host.netns, 'master', lab.bridge, 'up')
        run('ip', '-n', host.netns, 'addr', 'add', f'{host.address}/24', 'dev', 'eth0')
        run('ip', '-n', host.netns, 'link', 'set', 'eth0', 'up')
        run('ip', '-n', host.netns, 'link', 'set', 'lo', 'up')
        start_sshd(lab, host)
        lab.save()
    return lab


def kill(lab: Lab, host: Host) -> list[int]:
    """The host dies: every process in its namespace (its sshd, sessions, builds) gets
    SIGKILL. Its address stays, so new connections are refused at once."""
    pids = [int(p) for p in run('ip', 'netns', 'pids', host.netns).split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def restart(lab: Lab, host: Host) -> None:
    """A host that died comes back (its disk as it was)."""
    kill(lab, host)
    start_sshd(lab, host)
    lab.save()


def stop(lab: Lab) -> None:
    for host in lab.hosts:
        if Path(f'/run/netns/{host.netns}').exists():
            kill(lab, host)
            subprocess.run(['ip', 'netns', 'del', host.netns], capture_output=True)
    subprocess.run(['ip', 'link', 'del', lab.bridge], capture_output=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == 'start':
        directory = Path(argv[1])
        count = int(argv[2]) if len(argv) > 2 else 3
        lab = start(directory, {f'h{i}': directory.resolve() / f'h{i}' / 'work'
                                for i in range(1, count + 1)})
        print(lab.hosts_file().read_text(), end='')
        return 0
    if len(argv) == 2 and argv[0] == 'stop':
        stop(Lab.load(Path(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
