/* The managed-settings table (see managed.h). Order matters to the transaction start: claims
 * first, then limits, in the order their SETs are sent. */
#include "policy/managed.h"

const struct managed_setting managed_settings[] = {
    {"request.jwt.claim.tenant", false, MANAGED_TENANT},
    {"request.jwt.claim.role", false, MANAGED_ROLE},
    {"request.jwt.claims", false, MANAGED_CLAIMS_JSON},
    {"statement_timeout", false, MANAGED_STATEMENT_TIMEOUT},
    {"work_mem", false, MANAGED_WORK_MEM},
    /* Any other claim setting a policy might read. */
    {"request.jwt.", true, MANAGED_PROTECTED},
    /* A reader could hold a transaction open past what the role allows. */
    {"idle_in_transaction_session_timeout", false, MANAGED_PROTECTED},
    /* Acting as another server role would bypass the policies written for this one. */
    {"role", false, MANAGED_PROTECTED},
    {"session_authorization", false, MANAGED_PROTECTED},
    /* The guard's lexer assumes on: off would make it misread backslashes in strings. */
    {"standard_conforming_strings", false, MANAGED_PROTECTED},
};

const size_t managed_settings_count = sizeof managed_settings / sizeof managed_settings[0];
