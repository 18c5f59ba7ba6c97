// The capacity store on a throwaway PostgreSQL (actors/capacity/pg-store.ts) against the port's contract.
import test from "ava";
import { pgState } from "../helpers/business-state.ts";
import { usePostgres } from "../helpers/postgres.ts";
import { capacityStoreContract } from "./capacity-store.contract.ts";

const open = pgState(usePostgres(test));
capacityStoreContract(test, async (t) => (await open(t))?.capacity);
