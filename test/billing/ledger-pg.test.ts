// The ledger on a throwaway PostgreSQL (billing/pg-ledger-store.ts) against the ledger's contract.
import test from "ava";
import { pgState } from "../helpers/business-state.ts";
import { usePostgres } from "../helpers/postgres.ts";
import { ledgerContract } from "./ledger.contract.ts";

ledgerContract(test, pgState(usePostgres(test)));
