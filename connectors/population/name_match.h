/* How the `population` connector compares an applicant's name with the population database's:
 * both Unicode NFC-normalised (a name typed with combining marks equals the precomposed one),
 * case-folded (NGUYỄN = Nguyễn), and with runs of white space collapsed and trimmed. */
#ifndef LT_NAME_MATCH_H
#define LT_NAME_MATCH_H

#include <stddef.h>

/* 1 when the two UTF-8 names are the same name, 0 when not, -1 when one is not valid UTF-8. */
int lt_name_equal(const char *a, const char *b);

#endif
