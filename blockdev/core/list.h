/* list: container_of and the intrusive FIFO that rawvec's queues share;
 * nothing here allocates, every element embeds its own link. */
#ifndef RAWVEC_LIST_H
#define RAWVEC_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The structure of @type whose @member @ptr points at. */
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
