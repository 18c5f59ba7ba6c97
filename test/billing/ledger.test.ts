// The ledger on a real SQLite business.db against the ledger's contract (ledger.contract.ts).
import test from "ava";
import { sqliteState } from "../helpers/business-state.ts";
import { ledgerContract } from "./ledger.contract.ts";

ledgerContract(test, sqliteState);
