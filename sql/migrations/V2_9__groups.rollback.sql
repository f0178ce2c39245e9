-- Undoes V2_9: groups and their memberships are gone (with their policies).
DROP TABLE group_members;
DROP TABLE groups;
