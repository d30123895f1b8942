/*
 * ioc_guard: the ioc broker rules that Mosquitto's password and ACL files cannot express.
 *
 * Loaded with `plugin .../ioc_guard.so` after `password_file` and `acl_file` (ioc.provisioning writes
 * the lines). Mosquitto asks plugin callbacks first and takes the first answer that is not "defer"; the
 * password and ACL files are consulted only when this plugin defers. So this plugin only ever refuses
 * or defers: it can narrow what the files allow, never widen it.
 *
 * Device accounts are the usernames without a "." (device ids cannot contain one; service accounts
 * always do). Rules:
 *   - a device connects only with client id == its username (refused before any session takeover);
 *   - a client id starting with a reserved prefix (option reserved_client_ids, "user=prefix ...")
 *     is refused to every account but that user: no one can take over an ingest worker's session;
 *   - a device may not SUBSCRIBE to anything (the ACL file cannot refuse a subscription: Mosquitto's
 *     default check grants every SUBSCRIBE and only checks "read" on delivery, which let a device join
 *     the ingest's shared subscription, take its round-robin turns and have those messages dropped);
 *   - a device may publish retained only on its own status topic (".../<device>/status"), at most
 *     retain_max_bytes bytes; wills are checked the same way when they are sent.
 * Topic depth needs no rule here: every account's ACL lines have exactly the contract's levels.
 *
 * Build: cc -I<mosquitto>/include -fPIC -shared ioc_guard.c -o ioc_guard.so (scripts/setup-system.sh).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosquitto.h"
#include "mosquitto_broker.h"
#include "mosquitto_plugin.h"

#define MAX_RESERVED 16

struct reserved_prefix {
	char *username;
	char *prefix;
};

static mosquitto_plugin_id_t *guard_id = NULL;
static struct reserved_prefix reserved[MAX_RESERVED];
static int reserved_count = 0;
static long retain_max_bytes = 256;

static bool is_device(const char *username)
{
	return username != NULL && strchr(username, '.') == NULL;
}

/* True when topic is exactly ".../<device_id>/status". */
static bool own_status_topic(const char *topic, const char *device_id)
{
	size_t tlen = strlen(topic), dlen = strlen(device_id), slen = strlen("/status");
	if(tlen < dlen + slen + 1) return false;
	if(strcmp(topic + tlen - slen, "/status") != 0) return false;
	if(strncmp(topic + tlen - slen - dlen, device_id, dlen) != 0) return false;
	return topic[tlen - slen - dlen - 1] == '/';
}

static int basic_auth_callback(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);
	const char *username = ed->username;
	int i;

	(void)event;
	(void)userdata;
	if(username == NULL || client_id == NULL){
		/* Anonymous clients: the password file's check (allow_anonymous false) refuses them. */
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	for(i = 0; i < reserved_count; i++){
		if(strncmp(client_id, reserved[i].prefix, strlen(reserved[i].prefix)) == 0
				&& strcmp(username, reserved[i].username) != 0){
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
					"ioc_guard: refused %s: client id '%s' is reserved for %s", username, client_id,
					reserved[i].username);
			return MOSQ_ERR_AUTH;
		}
	}
	if(is_device(username) && strcmp(username, client_id) != 0){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"ioc_guard: refused device %s: its client id must be its device id, not '%s'", username,
				client_id);
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int acl_check_callback(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);

	(void)event;
	(void)userdata;
	if(ed->access == MOSQ_ACL_WRITE && ed->retain && is_device(username)){
		if(!own_status_topic(ed->topic, username) || ed->payloadlen > (uint32_t)retain_max_bytes){
			return MOSQ_ERR_ACL_DENIED;
		}
	}else if(ed->access == MOSQ_ACL_SUBSCRIBE && is_device(username)){
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* Parse "user=prefix user2=prefix2 ..." into the reserved table. */
static int parse_reserved(const char *value)
{
	char *copy = strdup(value), *save = NULL, *item, *eq;

	if(copy == NULL) return MOSQ_ERR_NOMEM;
	for(item = strtok_r(copy, " \t", &save); item; item = strtok_r(NULL, " \t", &save)){
		eq = strchr(item, '=');
		if(eq == NULL || eq == item || eq[1] == '\0' || reserved_count == MAX_RESERVED){
			mosquitto_log_printf(MOSQ_LOG_ERR, "ioc_guard: bad reserved_client_ids entry '%s' (want user=prefix)", item);
			free(copy);
			return MOSQ_ERR_INVAL;
		}
		*eq = '\0';
		reserved[reserved_count].username = strdup(item);
		reserved[reserved_count].prefix = strdup(eq + 1);
		reserved_count++;
	}
	free(copy);
	return MOSQ_ERR_SUCCESS;
}

static int parse_positive(const char *key, const char *value, long *out)
{
	char *end = NULL;
	long parsed = strtol(value, &end, 10);

	if(end == value || *end != '\0' || parsed < 1){
		mosquitto_log_printf(MOSQ_LOG_ERR, "ioc_guard: %s must be a positive integer, not '%s'", key, value);
		return MOSQ_ERR_INVAL;
	}
	*out = parsed;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	int i, rc = MOSQ_ERR_SUCCESS;

	(void)user_data;
	guard_id = identifier;
	for(i = 0; i < opt_count && rc == MOSQ_ERR_SUCCESS; i++){
		if(strcmp(opts[i].key, "reserved_client_ids") == 0){
			rc = parse_reserved(opts[i].value);
		}else if(strcmp(opts[i].key, "retain_max_bytes") == 0){
			rc = parse_positive(opts[i].key, opts[i].value, &retain_max_bytes);
		}else{
			mosquitto_log_printf(MOSQ_LOG_ERR, "ioc_guard: unknown option plugin_opt_%s", opts[i].key);
			rc = MOSQ_ERR_INVAL;
		}
	}
	if(rc != MOSQ_ERR_SUCCESS) return rc;
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"ioc_guard: %d reserved client id prefixes; devices: no subscribe, retained only on own status up to %ld bytes",
			reserved_count, retain_max_bytes);
	rc = mosquitto_callback_register(guard_id, MOSQ_EVT_BASIC_AUTH, basic_auth_callback, NULL, NULL);
	if(rc != MOSQ_ERR_SUCCESS) return rc;
	return mosquitto_callback_register(guard_id, MOSQ_EVT_ACL_CHECK, acl_check_callback, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	int i;

	(void)user_data;
	(void)opts;
	(void)opt_count;
	for(i = 0; i < reserved_count; i++){
		free(reserved[i].username);
		free(reserved[i].prefix);
	}
	reserved_count = 0;
	mosquitto_callback_unregister(guard_id, MOSQ_EVT_ACL_CHECK, acl_check_callback, NULL);
	return mosquitto_callback_unregister(guard_id, MOSQ_EVT_BASIC_AUTH, basic_auth_callback, NULL);
}
