#!/bin/bash
# A one-node Slurm cluster in a folder, for trying the scripts here and for the tests: its own
# munged (key and socket in the folder), slurmctld and slurmd on private ports, no cgroups.
#   local-cluster.sh start DIR [CPUS]   then: export SLURM_CONF=DIR/slurm.conf
#   local-cluster.sh stop DIR
set -euo pipefail
command=$1
dir=$(realpath -m "$2")
case "$command" in
start)
  cpus=${3:-$(nproc)}
  # The daemons must keep none of the caller's descriptors (a caller waiting for its pipes or
  # sockets to close would wait forever): close all but 0-2 here, and redirect those below.
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  mkdir -p "$dir/state" "$dir/spool"
  chmod 700 "$dir"
  host=$(hostname -s)
  port=$((20000 + RANDOM % 20000))
  head -c 1024 /dev/urandom >"$dir/munge.key"
  chmod 400 "$dir/munge.key"
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" </dev/null >>"$dir/daemons.out" 2>&1
  cat >"$dir/slurm.conf" <<CONF
ClusterName=backdrop-local
SlurmctldHost=$host
SlurmUser=$(id -un)
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  # The daemons must not keep the caller's stdout/stderr open (a caller reading them to the end
  # would wait forever).
  slurmctld -f "$dir/slurm.conf" </dev/null >>"$dir/daemons.out" 2>&1
  slurmd -f "$dir/slurm.conf" </dev/null >>"$dir/daemons.out" 2>&1
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then exit 0; fi
    sleep 0.2
  done
  echo "local-cluster.sh: the node did not become idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
  exit 1
  ;;
stop)
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then kill "$(cat "$dir/$name.pid")" 2>/dev/null || true; fi
  done
  for name in slurmd slurmctld munged; do
    for _ in $(seq 50); do
      [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
      sleep 0.1
    done
  done
  ;;
*) echo "usage: $0 start|stop DIR [CPUS]" >&2; exit 64 ;;
esac
