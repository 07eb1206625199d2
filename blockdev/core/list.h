/* list: container_of and the intrusive FIFO that rawvec's queues share;
 * nothing here allocates, every element embeds its own link. */
#ifndef RAWVEC_LIST_H
#define RAWVEC_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The structure of @type whose @member @ptr points at. */
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/*
 * A FIFO of structs linked through a next-pointer field of their own (named
 * by @link): push at the tail, pop at the head, unlink anywhere while
 * walking with a pointer to the previous link.  An all-zero FIFO is empty.
 * Declare one as FIFO(struct x) name;
 */
#define FIFO(type)           \
	struct {             \
		type *head;  \
		type **tail; \
	}

#define fifo_empty(q) (!(q)->head)

#define fifo_push(q, e, link)                   \
	do {                                    \
		if (!(q)->tail)                 \
			(q)->tail = &(q)->head; \
		(e)->link = NULL;               \
		*(q)->tail = (e);               \
		(q)->tail = &(e)->link;         \
	} while (0)

/* Take *@pp (a pointer to the head or to an element's link) off @q. */
#define fifo_unlink(q, pp, link)                 \
	do {                                     \
		if ((q)->tail == &(*(pp))->link) \
			(q)->tail = (pp);        \
		*(pp) = (*(pp))->link;           \
	} while (0)

#define fifo_pop(q, link)                                  \
	({                                                 \
		__typeof__((q)->head) fifo_e_ = (q)->head; \
		if (fifo_e_)                               \
			fifo_unlink(q, &(q)->head, link);  \
		fifo_e_;                                   \
	})

/* Empty @q, returning its former head: the elements stay chained, oldest
 * first, for the caller to walk. */
#define fifo_take(q)                                       \
	({                                                 \
		__typeof__((q)->head) fifo_h_ = (q)->head; \
		(q)->head = NULL;                          \
		(q)->tail = &(q)->head;                    \
		fifo_h_;                                   \
	})

#endif
