// GET /api/v2/datacenters: a federation master's datacenters with their sync state (healthy or degraded, lag,
// last applied sequence, agents); an empty list on a standalone or dc CP. Admin only: datacenters are the
// operator's topology. Imports contract/ types only.
import type { Router } from "@koa/router";
import type { DatacentersPort } from "../../contract/datacenters.ts";
import type { DatacenterJson } from "../../contract/rest-responses.ts";
import { adminRoute } from "./guard.ts";
import { iso } from "./json.ts";

export function mountDatacenters(api: Router, port: DatacentersPort | undefined): void {
  api.get("/datacenters", adminRoute, (ctx) => {
    ctx.body = {
      datacenters: (port?.list() ?? []).map(
        (d): DatacenterJson => ({ ...d, last_event_at: iso(d.last_event_at) }),
      ),
    };
  });
}
