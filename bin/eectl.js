#!/usr/bin/env node
// eectl entry point: registers tsx so the TypeScript sources run as they are (DESIGN.md: run with tsx).
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
