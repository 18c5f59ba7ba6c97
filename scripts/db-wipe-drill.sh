#!/usr/bin/env bash
# DB-wipe drill from the command line: CP + 3 agents + 2 healthy deployments and a tenant account with a key;
# kill -9 the CP, delete its runtime DB (easyenclave.db; not business.db with accounts, keys and the audit chain,
# nor its identity key: agents pinned it and refuse another), restart on the same port; time until /readyz is 200
# and the agent listing is back, then show the tenant's key still works and the audit chain verifies.
# Usage: scripts/db-wipe-drill.sh (needs a Docker engine and busybox-static; uses ports 18080, 19001-3).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cd "$WORK"
E="node $REPO/bin/eectl.js"
export EE_CP_URL=http://127.0.0.1:18080 EE_TOKEN=drill-admin-token-0123456789 EE_LOG_LEVEL=warn
$E attest dev-init --dir ./dev-root >/dev/null
# The agent listing as sorted [agent_id, state, deployment_id] triples: what must come back after the wipe.
listing() { $E agents list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).agents.map(a=>[a.agent_id,a.state,a.deployment_id]).sort())))'; }
# When each container of this drill's deployments started (only these: other workloads may share the engine).
start_times() { for d in $DEPLOYMENTS; do docker ps -q --filter "label=io.easyenclave.deployment=$d"; done | xargs docker inspect --format '{{.State.StartedAt}}' | sort; }
cp_start() { $E control-plane --listen 127.0.0.1:18080 --data-dir ./cp --dev-attestation ./dev-root --admin-token $EE_TOKEN >$WORK/cp.log 2>&1 & echo $!; }
CP=$(cp_start)
for i in 1 2 3; do
  cat > agent$i.json <<J
{"control_plane_url": "ws://127.0.0.1:18080", "vm_name": "vm-$i", "node_size": "tiny", "datacenter": "baremetal:local",
 "api_listen": "127.0.0.1:1900$i", "data_dir": "./agent$i", "heartbeat_interval_ms": 1000,
 "attestation": {"provider": "dev", "dir": "./dev-root"}}
J
  $E agent --config agent$i.json >$WORK/agent$i.log 2>&1 &
  AGENTS="${AGENTS:-} $!"
done
until curl -sf localhost:18080/readyz >/dev/null; do sleep 0.2; done
sleep 2
(cd "$REPO" && node --import tsx -e "import('$REPO/cli/demo.ts').then(async m=>require('fs').writeFileSync('$WORK/context.tar', await m.busyboxContext()))")
# The demo built from the context, on its container port (no host port is published).
(cd $REPO && node --import tsx -e "import('$REPO/cli/demo.ts').then(m=>process.stdout.write(m.demoCompose()))") > compose.yaml
for app in hello1 hello2; do
  $E deploy --app $app --compose compose.yaml --context context.tar --health-port 8080 --wait | tail -1
done
$E agents list
ACCOUNT=$($E accounts create --name drill-tenant --kind tenant --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).account_id))')
TENANT_TOKEN=$($E keys create --account "$ACCOUNT" --scopes deploy,read --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
before=$(listing)
DEPLOYMENTS=$($E deployments list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).deployments.map(d=>d.deployment_id).join(" ")))')
starts=$(start_times)
kill -9 $CP; rm -f ./cp/easyenclave.db*
t0=$(date +%s%N)
CP=$(cp_start)
until curl -sf localhost:18080/readyz >/dev/null; do sleep 0.05; done
t1=$(date +%s%N)
until [ "$(listing 2>/dev/null)" = "$before" ]; do sleep 0.05; done
t2=$(date +%s%N)
echo "ready after $(( (t1-t0)/1000000 )) ms; agent listing identical after $(( (t2-t0)/1000000 )) ms"
$E agents list
$E deployments list
after=$(start_times)
[ "$starts" = "$after" ] && echo "container start times unchanged" || echo "CONTAINERS RESTARTED"
curl -s localhost:18080/readyz; echo
echo "accounts and keys after the wipe (listed with the tenant's own key):"
$E keys list --account "$ACCOUNT" --token "$TENANT_TOKEN"
$E audit verify --data-dir ./cp
for d in $DEPLOYMENTS; do $E deployments undeploy $d --wait | tail -1; done
kill $CP $AGENTS; sleep 1
rm -rf "$WORK"
