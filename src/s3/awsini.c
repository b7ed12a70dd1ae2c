/* awsini.c - the AWS shared config/credentials file reader of awsini.h: the file becomes a
 * flat array of (profile, key, value) entries plus the list of profiles seen. */
#include "s3/awsini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define AWSINI_MAX_FILE (1u << 20)
#define AWSINI_MAX_LINE (64u << 10)

struct awsini_ent {
	char *profile;
	char *key;      /* NULL: a section without keys, recorded so the profile exists */
	char *value;
};

struct awsini {
	struct awsini_ent *ents;
	size_t n, cap;
};

static char *awsini_trim(char *s, char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*e = '\0';
	return s;
}

static int awsini_add(struct awsini *f, const char *profile, const char *key, const char *value)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct awsini_ent *e = realloc(f->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		f->ents = e;
		f->cap = cap;
	}
	struct awsini_ent *e = &f->ents[f->n];
	e->profile = util_strdup(profile);
	e->key = key ? util_strdup(key) : NULL;
	e->value = value ? util_strdup(value) : NULL;
	if (!e->profile || (key && !e->key) || (value && !e->value)) {
		free(e->profile);
		free(e->key);
		util_free_secret(e->value);
		return -ENOMEM;
	}
	f->n++;
	return 0;
}

/* The profile a section header names, or NULL for a section that is not a profile. */
static const char *awsini_section(char *name, int is_config)
{
	if (!is_config)
		return name;
	if (strcmp(name, "default") == 0)
		return name;
	if (strncmp(name, "profile", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
		char *p = name + 8;
		while (*p == ' ' || *p == '\t')
			p++;
		return *p ? p : NULL;
	}
	return NULL;
}

int awsini_parse(const char *text, size_t len, int is_config, struct awsini **out,
		 unsigned *lineno)
{
	struct awsini *f = calloc(1, sizeof(*f));
	char *copy = NULL, *profile = NULL;
	unsigned ln = 0;
	int rc = -ENOMEM;
	*out = NULL;
	if (lineno)
		*lineno = 0;
	if (!f)
		return -ENOMEM;
	if (memchr(text, '\0', len)) {
		rc = -EINVAL;
		goto fail;
	}
	if (!(copy = util_strndup(text, len)))
		goto fail;
	int in_profile = 0;
	for (char *s = copy; *s;) {
		char *nl = strchr(s, '\n');
		char *e = nl ? nl : s + strlen(s);
		char *next = nl ? nl + 1 : e;
		ln++;
		if ((size_t)(e - s) > AWSINI_MAX_LINE) {
			rc = -EINVAL;
			goto fail;
		}
		int indented = *s == ' ' || *s == '\t';
		char *t = awsini_trim(s, e);
		if (!*t || *t == '#' || *t == ';' || indented) {
			s = next;
			continue;    /* blank, comment, or a nested setting's continuation */
		}
		if (*t == '[') {
			char *close = strchr(t, ']');
			if (!close) {
				rc = -EINVAL;
				goto fail;
			}
			char *name = awsini_trim(t + 1, close);
			const char *p = awsini_section(name, is_config);
			free(profile);
			profile = p && *p ? util_strdup(p) : NULL;
			if (p && *p && !profile)
				goto fail;
			in_profile = profile != NULL;
			if (in_profile && (rc = awsini_add(f, profile, NULL, NULL)))
				goto fail;
			s = next;
			continue;
		}
		char *eq = strchr(t, '=');
		if (in_profile && eq) {
			char *k = awsini_trim(t, eq);
			char *v = awsini_trim(eq + 1, eq + 1 + strlen(eq + 1));
			if (*k && (rc = awsini_add(f, profile, k, v)))
				goto fail;
		}
		s = next;
	}
	explicit_bzero(copy, len);
	free(copy);
	free(profile);
	*out = f;
	return 0;
fail:
	if (lineno)
		*lineno = ln;
	if (copy) {
		explicit_bzero(copy, len);
		free(copy);
	}
	free(profile);
	awsini_free(f);
	return rc;
}

int awsini_load(const char *path, int is_config, struct awsini **out, unsigned *line)
{
	struct stat st;
	char *data = NULL;
	int rc;
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_size > AWSINI_MAX_FILE) {
		rc = -EFBIG;
		goto out;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	if (!(data = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == cap) {   /* it grew while we read it */
			rc = -EAGAIN;
			goto out;
		}
	}
	rc = awsini_parse(data, len, is_config, out, line);
out:
	if (data) {
		explicit_bzero(data, (size_t)st.st_size + 1);
		free(data);
	}
	close(fd);
	return rc;
}

int awsini_has_profile(const struct awsini *f, const char *profile)
{
	for (size_t i = 0; f && i < f->n; i++)
		if (strcmp(f->ents[i].profile, profile) == 0)
			return 1;
	return 0;
}

const char *awsini_get(const struct awsini *f, const char *profile, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; f && i < f->n; i++)
		if (f->ents[i].key && strcmp(f->ents[i].profile, profile) == 0 &&
		    strcmp(f->ents[i].key, key) == 0)
			v = f->ents[i].value;
	return v;
}

void awsini_free(struct awsini *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->ents[i].profile);
		free(f->ents[i].key);
		util_free_secret(f->ents[i].value);
	}
	free(f->ents);
	free(f);
}
