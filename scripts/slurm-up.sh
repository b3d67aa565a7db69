#!/usr/bin/env bash
# Start a one-node SLURM cluster on this host (Debian/Ubuntu, as root), for the tests that need a
# real SLURM (tests/test_slurm*.py) and for trying `--executor slurm` by hand.
#
#   sudo scripts/slurm-up.sh          # install (apt) if needed, configure, start; idempotent
#   sudo scripts/slurm-up.sh --check  # only say whether the cluster answers (exit 1 if not)
#
# It installs Debian's slurm-wlm and munge, writes /etc/slurm/slurm.conf (one node: this host's
# CPUs and memory, one partition "debug"; proctrack/linuxproc and task/none because containers
# have no cgroup or systemd for SLURM to use), then starts munged, slurmctld and slurmd without
# systemd. A cluster that already answers is left alone, and so is a slurm.conf this script did
# not write. No accounting storage (no slurmdbd): `sacct` says so, and lit_algos does not need it.
set -euo pipefail

MARK="# written by lit_algos scripts/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
LOG=/var/log/slurm
PARTITION=debug

answers() {  # the controller answers and the node takes jobs
  command -v sinfo >/dev/null 2>&1 || return 1
  timeout 10 scontrol ping 2>/dev/null | grep -q "is UP" || return 1
  local state
  state=$(timeout 10 sinfo -h -N -o '%t' 2>/dev/null | head -1)
  [[ "$state" =~ ^(idle|mix|alloc|comp) ]] || return 1
  # The controller notices a dead slurmd only after SlurmdTimeout (5 min): on this script's
  # one-node cluster, look for the daemons themselves.
  if grep -qF "$MARK" "$CONF" 2>/dev/null; then
    pgrep -x slurmd >/dev/null && pgrep -x munged >/dev/null || return 1
  fi
}

if [[ "${1:-}" == "--check" ]]; then
  answers && { echo "slurm: up"; sinfo; exit 0; }
  echo "slurm: not running" >&2
  exit 1
fi

if answers; then
  echo "slurm-up: a SLURM cluster already answers here; nothing to do."
  sinfo
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  echo "slurm-up: needs root (apt-get, /etc/slurm, the daemons); run it with sudo." >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-up: installing slurm-wlm and munge (apt) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
  }
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
mem_mb=$((mem_mb > 2048 ? mem_mb - 1024 : mem_mb))  # leave the OS some memory

if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
  echo "slurm-up: $CONF exists and was not written by this script; not touching it." >&2
  echo "          Start that cluster's daemons yourself, or move the file away to get a test cluster." >&2
  exit 1
fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" /run/munge /run/slurm
cat >"$CONF.new" <<CONFEOF
$MARK
ClusterName=lit
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MaxArraySize=1001
KillWait=10
SchedulerParameters=sched_interval=2
DefMemPerCPU=$((mem_mb / cpus))
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONFEOF
changed=0
if ! cmp -s "$CONF.new" "$CONF" 2>/dev/null; then
  mv "$CONF.new" "$CONF"
  changed=1
else
  rm -f "$CONF.new"
fi

running() { pgrep -x "$1" >/dev/null; }

# munge: the key comes with the package; the daemon runs as its own user.
chown munge:munge /run/munge
running munged || runuser -u munge -- /usr/sbin/munged

# Start only what is not running: a controller that is up keeps its jobs; one that runs with an
# older slurm.conf of this script rereads it.
if running slurmctld; then
  if [[ $changed == 1 ]]; then scontrol reconfigure; fi
else
  /usr/sbin/slurmctld
fi
running slurmd || /usr/sbin/slurmd

for _ in $(seq 1 60); do
  if answers; then
    echo "slurm-up: one-node cluster up ($host, $cpus CPUs, ${mem_mb} MB, partition $PARTITION)."
    sinfo
    exit 0
  fi
  # a node that came back DOWN after a restart is returned to service
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm-up: the cluster did not come up; logs:" >&2
tail -n 20 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true
exit 1
