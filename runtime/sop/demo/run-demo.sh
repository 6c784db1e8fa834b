#!/usr/bin/env bash
# Live demo: the platform emulator and `sop run` with the bundled plugins and playbooks.
# The emulator generates traffic (new contacts, messages, orders) and calls the daemon's
# webhooks; the daemon runs the playbooks and sends through the plugins back to the emulator.
# A summary line is printed every few seconds: events in, plugin calls, deliveries to people.
# Usage: runtime/sop/demo/run-demo.sh [SECONDS]  (default 30). Needs CARGO_TARGET_DIR builds
# of `sop`, `sop-emulator` (release) and the plugins (wasm32-wasip2, release).
set -euo pipefail
cd "$(dirname "$0")/../../.."
seconds="${1:-30}"
target="${CARGO_TARGET_DIR:-target}"
profile="${PROFILE:-release}"
sop="$target/$profile/sop"
emulator="$target/$profile/sop-emulator"
wasm="${WASM_DIR:-$target/wasm32-wasip2/release}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

emu_port=18900 ingress_port=18080 admin_port=19090
mkdir -p "$work/plugins"
cp "$wasm/sop_plugin_wecom.wasm" "$wasm/sop_plugin_douyin.wasm" "$wasm/sop_plugin_shop.wasm" \
    "$work/plugins/"
sed -e "s#@ROOT@#$PWD#g" -e "s#@WORK@#$work#g" -e "s#@EMU@#$emu_port#g" \
    -e "s#@INGRESS@#$ingress_port#g" -e "s#@ADMIN@#$admin_port#g" \
    -e "s#@PLAYBOOKS@#$PWD/playbooks#g" \
    runtime/sop/demo/sop.toml.in > "$work/sop.toml"

# The emulator's default credentials (docs/emulator.md), handed over as the operator would.
export DEMO_WECOM_SECRET=emu-secret DEMO_WECOM_TOKEN=emuToken \
       DEMO_WECOM_AES_KEY=jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C \
       DEMO_DOUYIN_SECRET=emu-douyin-secret DEMO_DOUYIN_CODE=demo-code \
       DEMO_SHOP_API_KEY=emu-shop-key DEMO_SHOP_WEBHOOK_SECRET=emu-shop-webhook-secret
echo demo-admin-token > "$work/admin.token"
auth="Authorization: Bearer demo-admin-token"

"$sop" run --config "$work/sop.toml" 2> "$work/sop.log" &
for _ in $(seq 100); do curl -sf "localhost:$admin_port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "localhost:$admin_port/readyz" >/dev/null || { echo "sop did not start:"; cat "$work/sop.log"; exit 1; }
"$emulator" --listen "127.0.0.1:$emu_port" --seed 7 --contacts 500 --rate 5 \
    --confirm-after-ms 2000 \
    --wecom-callback "http://127.0.0.1:$ingress_port/hooks/wecom/demo-wecom" \
    --douyin-webhook "http://127.0.0.1:$ingress_port/hooks/douyin/demo-douyin" \
    --shop-webhook "http://127.0.0.1:$ingress_port/hooks/shop/demo-shop" \
    > "$work/emulator.log" 2>&1 &

echo "sop admin: http://localhost:$admin_port (token demo-admin-token), emulator: http://localhost:$emu_port"
curl -s -H "$auth" "localhost:$admin_port/api/playbooks" | head -c 600; echo
metric() { curl -s "localhost:$admin_port/metrics" | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s+0 }'; }
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
    sleep 3
    deliveries=$(curl -s "localhost:$emu_port/_emulator/deliveries" | grep -o '"seq"' | wc -l)
    printf '%3ss  events in %-5s  runs started %-5s  plugin calls %-5s  deliveries to people %s\n' \
        "$SECONDS" "$(metric sop_ingress_events_total)" "$(metric sop_runtime_enrollments_total)" \
        "$(metric sop_plugin_calls_total)" "$deliveries"
done
echo "last deliveries:"
curl -s "localhost:$emu_port/_emulator/export.jsonl" | tail -n 5
