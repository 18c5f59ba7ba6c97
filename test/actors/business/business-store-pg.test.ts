// The identity service over the business store on a throwaway PostgreSQL (actors/business/pg-store.ts) against
// the port's contract.
import test from "ava";
import { pgState } from "../../helpers/business-state.ts";
import { usePostgres } from "../../helpers/postgres.ts";
import { businessStoreContract } from "./business-store.contract.ts";

businessStoreContract(test, pgState(usePostgres(test)));
